/**
 * Pure decisions about how tasks and runs end: a worker's outcome → the task's status, whether
 * a failed VM is retried and when, and a run's status from its tasks'.
 */
import type { WorkerOutcome } from '../worker/index.js';
import type { RunStatus, TaskStatus } from './task-types.js';

/** Retries of failed and interrupted VM backups. */
export interface RetryPolicy {
  /** How many times a failed VM is tried again (0: never). Default 2. */
  readonly retries?: number;
  /** The wait before the first retry, ms (default 5 minutes). */
  readonly delayMs?: number;
  /** Each further retry waits this many times longer (default 2). */
  readonly backoff?: number;
}

export const RETRY_DEFAULTS = { retries: 2, delayMs: 5 * 60_000, backoff: 2 } as const;

/** When attempt `attempt` (1: the first try) failed: when to try again, or undefined for never. */
export function retryAt(policy: RetryPolicy, attempt: number, now: number): number | undefined {
  const retries = policy.retries ?? RETRY_DEFAULTS.retries;
  if (attempt > retries) return undefined;
  const delay = (policy.delayMs ?? RETRY_DEFAULTS.delayMs) * (policy.backoff ?? RETRY_DEFAULTS.backoff) ** (attempt - 1);
  return now + delay;
}

/** A task's end from its worker's outcome; `cancelled` when someone (or the window, `why`) asked for it. */
export function taskEnd(outcome: WorkerOutcome, cancelled: boolean, why: { code: string; message: string } = { code: 'E_INTERRUPTED', message: 'cancelled' }): { status: TaskStatus; error?: { code: string; message: string } } {
  if (outcome.kind === 'result') return { status: outcome.result.warnings.length > 0 ? 'warning' : 'succeeded' };
  if (cancelled) return { status: 'cancelled', error: why };
  if (outcome.kind === 'error') return { status: 'failed', error: { code: outcome.code, message: outcome.message } };
  const how = outcome.signal !== null
    ? `was killed by ${outcome.signal}${outcome.signal === 'SIGKILL' ? ' (out of memory, or killed by hand)' : ''}`
    : `exited with status ${outcome.exitCode ?? 'unknown'} without reporting`;
  const detail = outcome.stderr === '' ? '' : `: ${outcome.stderr.split('\n').at(-1) ?? ''}`;
  return { status: 'failed', error: { code: 'E_WORKER_FAILED', message: `the worker process ${how}${detail}` } };
}

/** A run's status once none of its tasks is queued or running; a task the window stopped (E_WINDOW_CLOSED) makes it a warning. */
export function runEnd(tasks: readonly { status: TaskStatus; errorCode: string | null }[]): { status: RunStatus; detail: string } {
  const count = (status: TaskStatus) => tasks.filter((t) => t.status === status).length;
  const windowClosed = tasks.filter((t) => t.status === 'cancelled' && t.errorCode === 'E_WINDOW_CLOSED').length;
  const failed = count('failed') + count('interrupted');
  const cancelled = count('cancelled') - windowClosed;
  const parts = [`${count('succeeded')} succeeded`, `${count('warning')} with warnings`, `${failed} failed`, `${cancelled} cancelled`, `${windowClosed} stopped by the backup window`];
  const detail = parts.filter((p) => !p.startsWith('0 ')).join(', ') || 'no VM';
  if (failed > 0) return { status: 'failed', detail };
  if (cancelled > 0) return { status: 'cancelled', detail };
  if (windowClosed > 0 || count('warning') > 0) return { status: 'warning', detail };
  return { status: 'succeeded', detail };
}
