/**
 * Starts a worker process for one task and follows it to its end. The worker is a fork of
 * worker-entry.js at low priority: under `nice -n 10` and `ionice -c3` (idle I/O class) when
 * those programs exist, so production on the host keeps its CPU and disks; otherwise the worker
 * lowers its own CPU priority at start (its threads inherit it).
 *
 * Cancel escalates: a `cancel` message (the backup aborts cleanly), then SIGTERM after
 * `cancelGraceMs`, then SIGKILL after `killGraceMs` more. Whatever happens to the process, the
 * returned `ended` promise settles once with what it reported or how it died; it never rejects.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { VmBackupResult } from '../../backup/index.js';
import type { TaskKind } from '../tasks/index.js';
import type { TaskReport } from './kinds/task-report.js';
import type { FromWorker, ToWorker, WorkerProgress, WorkerRates } from './worker-protocol.js';

/** How a worker ended. */
export type WorkerOutcome =
  | { kind: 'result'; result: VmBackupResult | TaskReport }
  | { kind: 'error'; code: string; message: string }
  /** It exited without reporting: killed by a signal (SIGKILL: perhaps the kernel's OOM killer), or crashed. */
  | { kind: 'crashed'; exitCode: number | null; signal: NodeJS.Signals | null; stderr: string };

/** What the parent hears from a worker while it runs. */
export interface WorkerListener {
  onProgress?(progress: WorkerProgress): void;
  onLog?(level: 'info' | 'warning' | 'error', line: string): void;
  /** A running task's report so far. */
  onReport?(report: TaskReport): void;
}

/** Options of {@link startWorker}. */
export interface WorkerOptions {
  /** After a cancel message, how long to wait before SIGTERM (default 10 s). */
  cancelGraceMs?: number;
  /** After SIGTERM, how long to wait before SIGKILL (default 5 s). */
  killGraceMs?: number;
  /** Extra arguments for node (tests: none). */
  execArgv?: string[];
}

/** A running worker. */
export interface WorkerHandle {
  readonly pid: number | undefined;
  readonly ended: Promise<WorkerOutcome>;
  setRates(rates: WorkerRates): void;
  /** Asks the task to stop, escalating to signals. Idempotent. */
  cancel(): void;
  /** Kills it at once (SIGKILL). */
  kill(): void;
}

const ENTRY = fileURLToPath(new URL('./worker-entry.js', import.meta.url));
const NICE = executable('/usr/bin/nice') ?? executable('/bin/nice');
const IONICE = executable('/usr/bin/ionice') ?? executable('/bin/ionice');

/** How long a worker's IPC channel may take to deliver its last messages after the process exited. */
const CHANNEL_DRAIN_MS = 2000;

/** Forks a worker and sends it its task. */
export function startWorker(task: { taskId: string; kind: TaskKind; spec: unknown; rates: WorkerRates }, listener: WorkerListener = {}, options: WorkerOptions = {}): WorkerHandle {
  const child = forkLowPriority(options.execArgv ?? []);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  let reported: WorkerOutcome | undefined;
  child.on('message', (message: FromWorker) => {
    if (message.type === 'progress') {
      const { type: _, ...progress } = message;
      listener.onProgress?.(progress);
    }
    else if (message.type === 'log') listener.onLog?.(message.level, message.line);
    else if (message.type === 'report') listener.onReport?.(message.report);
    else if (message.type === 'result') reported = { kind: 'result', result: message.result };
    else if (message.type === 'error') reported = { kind: 'error', code: message.code, message: message.message };
  });
  const timers: NodeJS.Timeout[] = [];
  const ended = new Promise<WorkerOutcome>((resolve) => {
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      for (const timer of timers) clearTimeout(timer);
      resolve(reported ?? { kind: 'crashed', exitCode, signal, stderr: stderr.trim() });
    };
    // 'exit' can come before the last messages on the IPC channel are read (a result sent just
    // before exiting was then taken for a crash): without a report, wait for the channel to
    // close, which comes after every message, but not for long (a crashed child's channel
    // closes with it; 'close' itself could wait for a grandchild holding stderr open).
    child.once('exit', (exitCode, signal) => {
      if (reported !== undefined || !child.connected) return finish(exitCode, signal);
      const timer = setTimeout(() => finish(exitCode, signal), CHANNEL_DRAIN_MS);
      child.once('disconnect', () => {
        clearTimeout(timer);
        finish(exitCode, signal);
      });
    });
    child.once('error', (error) => {
      stderr += String(error);
      if (child.pid === undefined) finish(null, null);
    });
  });
  const send = (message: ToWorker) => {
    if (child.connected) child.send(message, (error) => void error);
  };
  send({ type: 'start', taskId: task.taskId, kind: task.kind, spec: task.spec, rates: task.rates });
  let cancelling = false;
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    get pid() {
      return child.pid;
    },
    ended,
    setRates: (rates) => send({ type: 'rates', rates }),
    cancel() {
      if (cancelling) return;
      cancelling = true;
      send({ type: 'cancel' });
      timers.push(setTimeout(() => {
        if (!alive()) return;
        child.kill('SIGTERM');
        timers.push(setTimeout(() => alive() && child.kill('SIGKILL'), options.killGraceMs ?? 5000));
      }, options.cancelGraceMs ?? 10_000));
    },
    kill: () => {
      if (alive()) child.kill('SIGKILL');
    },
  };
}

/** `nice -n 10 ionice -c3 node worker-entry.js`, or node alone (the worker renices itself). */
function forkLowPriority(execArgv: string[]): ChildProcess {
  const stdio: ('ignore' | 'pipe' | 'ipc')[] = ['ignore', 'ignore', 'pipe', 'ipc'];
  if (NICE === undefined) return fork(ENTRY, [], { execArgv, stdio, serialization: 'json' });
  const prefix = ['-n', '10', ...(IONICE === undefined ? [] : [IONICE, '-c3']), process.execPath];
  return fork(ENTRY, [], { execPath: NICE, execArgv: [...prefix, ...execArgv], stdio, serialization: 'json', env: { ...process.env, COFFER_WORKER_NICED: '1' } });
}

function executable(path: string): string | undefined {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return undefined;
  }
}
