/**
 * A backup task handed to an agent, seen by the task runner as a {@link WorkerHandle}: it
 * settles `ended` once, with the agent's result or error, or with how it was lost. Its states:
 *
 *   preparing ──(assignment ready)──▶ ready ──(an agent's poll took it)──▶ delivered ──▶ ended
 *       └──────────── cancel/kill before delivery: ended at once ─────────────────────────┘
 *
 * Cancel of a delivered task is told to the agent in its polls' `cancel` list; an agent that
 * has not ended the task `CANCEL_GRACE_MS` later is given up. The hub's watchdog ends a task
 * whose agent went offline (E_AGENT_LOST).
 */
import type { WorkerHandle, WorkerListener, WorkerOutcome, WorkerRates } from '../worker/index.js';
import type { AgentEnd } from './agent-result.js';
import { backupResultOf } from './agent-result.js';

/** After a cancel reached a delivered task, how long its agent gets to end it (its post-hook included). */
export const CANCEL_GRACE_MS = 15_000;

/** What the agent is sent for one task (docs/agent.md, `assign`). */
export interface Assignment {
  taskId: string;
  vm: string;
  host: string;
  job: string | null;
  tags: string[];
  paths: string[];
  exclude: string[];
  /** The agent repository server's port and the repository's name there; the passphrase of the agent's key (null: unencrypted). */
  repository: { port: number; name: string; passphrase: string | null };
  rates: WorkerRates;
}

export class RemoteTask implements WorkerHandle {
  readonly pid = undefined;
  readonly ended: Promise<WorkerOutcome>;
  state: 'preparing' | 'ready' | 'delivered' | 'ended' = 'preparing';
  assignment: Assignment | undefined;
  deliveredAt = 0;
  cancelRequested = false;
  private settle!: (outcome: WorkerOutcome) => void;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly startedAt: number;

  constructor(
    readonly agent: string,
    readonly taskId: string,
    readonly listener: WorkerListener,
    private readonly wake: () => void,
    private readonly now: () => number,
  ) {
    this.startedAt = now();
    this.ended = new Promise((resolve) => (this.settle = resolve));
  }

  /** The assignment is made (the agent's key exists): an agent's poll may take it. */
  prepared(assignment: Assignment): void {
    if (this.state !== 'preparing') return;
    this.assignment = assignment;
    this.state = 'ready';
    this.wake();
  }

  delivered(): Assignment {
    this.state = 'delivered';
    this.deliveredAt = this.now();
    return this.assignment as Assignment;
  }

  /** The agent's end (already validated). */
  finishedBy(end: AgentEnd): void {
    if ('error' in end) return this.end({ kind: 'error', code: end.error.code, message: end.error.message });
    const a = this.assignment as Assignment;
    this.end({ kind: 'result', result: backupResultOf(end.result, { vm: a.vm, host: a.host, ...(a.job === null ? {} : { job: a.job }), started: this.deliveredAt || this.startedAt, ended: this.now() }) });
  }

  /** Ends it from the server's side (agent lost, preparation failed). */
  fail(code: string, message: string): void {
    this.end({ kind: 'error', code, message });
  }

  setRates(rates: WorkerRates): void {
    // Reaches the agent with its next task (docs/agent.md, gaps): a running file backup keeps its rate.
    if (this.assignment !== undefined && this.state !== 'delivered') this.assignment.rates = rates;
  }

  cancel(): void {
    if (this.cancelRequested || this.state === 'ended') return;
    this.cancelRequested = true;
    if (this.state !== 'delivered') return this.end({ kind: 'crashed', exitCode: null, signal: null, stderr: 'cancelled before its agent took it' });
    this.wake();
    this.graceTimer = setTimeout(() => this.end({ kind: 'crashed', exitCode: null, signal: null, stderr: `the agent ${this.agent} did not stop the task within ${CANCEL_GRACE_MS / 1000} s of the cancel` }), CANCEL_GRACE_MS);
    this.graceTimer.unref();
  }

  kill(): void {
    this.cancelRequested = true;
    this.end({ kind: 'crashed', exitCode: null, signal: 'SIGKILL', stderr: `given up; the agent ${this.agent} is told to stop` });
  }

  private end(outcome: WorkerOutcome): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    clearTimeout(this.graceTimer);
    this.settle(outcome);
  }
}
