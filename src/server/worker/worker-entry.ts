/**
 * The main module of a worker process: waits for its one `start` message, runs the task,
 * reports progress, log lines and the result over IPC (worker-protocol.ts), and exits. A
 * `cancel` message, SIGTERM, or the parent going away (the IPC channel closes) aborts the task
 * cleanly: reads stop, no snapshot is written, the lease is released.
 */
import { setPriority } from 'node:os';
import { repositoryOpenerAt, runVmBackup, type VmBackupEvent, type VmBackupSpec } from '../../backup/index.js';
import { RateLimiter } from '../../concurrency/index.js';
import { isCofferError } from '../../errors/index.js';
import { cacheDirectoryOf } from '../../repo/index.js';
import { runTaskKind } from './kinds/index.js';
import { PROGRESS_INTERVAL_MS, type FromWorker, type ToWorker, type WorkerRates } from './worker-protocol.js';

/** The nice value a worker takes if its parent could not start it under `nice` (threads made later inherit it). */
const WORKER_NICE = 10;

const controller = new AbortController();
const send = (message: FromWorker) => new Promise<void>((resolve) => (process.send ? process.send(message, undefined, {}, () => resolve()) : resolve()));

if (process.env.COFFER_WORKER_NICED !== '1') {
  try {
    setPriority(WORKER_NICE);
  } catch {
    // Not allowed to lower our own priority: run at normal priority.
  }
}

/** The worker's shares of the bandwidth rules, set by the parent (unlimited until it says); bursts of 50 ms of the rate. */
const shareOfRule = () => new RateLimiter({ bytesPerSecond: undefined, burstSeconds: 0.05 });
const limits = { sourceRead: shareOfRule(), repositoryWrite: shareOfRule() };
const applyRates = (rates: WorkerRates) => {
  limits.sourceRead.setRate(rates.sourceRead);
  limits.repositoryWrite.setRate(rates.repositoryWrite);
};

let started = false;
process.on('message', (message: ToWorker) => {
  if (message.type === 'rates') applyRates(message.rates);
  else if (message.type === 'cancel') controller.abort(new Error('cancelled'));
  else if (message.type === 'start' && !started) {
    started = true;
    applyRates(message.rates);
    void run(message);
  }
});
process.on('SIGTERM', () => controller.abort(new Error('terminated')));
process.on('disconnect', () => {
  controller.abort(new Error('the task runner went away'));
  // Nobody to report to: give the backup a moment to release its lease, then go.
  setTimeout(() => process.exit(1), 5000).unref();
});

async function run(message: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  if (message.kind !== 'backup') return runOther(message);
  let lastProgress = 0;
  let latencySum = 0;
  let latencyCount = 0;
  try {
    const spec = message.spec as VmBackupSpec;
    const result = await runVmBackup(spec, {
      // The repository as the CLI would open it (same URL dispatch, S3 chunk cache), unlocked by its passphrase file.
      openRepository: repositoryOpenerAt(spec.repository, { env: process.env, ...(spec.threads === undefined ? {} : { threads: spec.threads }) }),
      cacheDirectory: cacheDirectoryOf(process.env),
      signal: controller.signal,
      limits,
      onEvent: (event) => {
        for (const { level, line } of logLines(event)) void send({ type: 'log', level, line });
      },
      onProgress: (p) => {
        if (p.sourceLatencyMs !== undefined) {
          latencySum += p.sourceLatencyMs;
          latencyCount++;
        }
        const now = performance.now();
        if (now - lastProgress < PROGRESS_INTERVAL_MS && p.vmBytesDone < p.vmBytesTotal) return;
        lastProgress = now;
        const latency = latencyCount === 0 ? {} : { latencyMs: latencySum / latencyCount };
        latencySum = 0;
        latencyCount = 0;
        void send({ type: 'progress', done: p.vmBytesDone, total: p.vmBytesTotal, sourceBytesRead: p.sourceBytesRead, ...latency });
      },
    });
    await send({ type: 'result', result });
    process.exit(0);
  } catch (error) {
    await fail(error);
  }
}

/** A backup's event as lines of the task's log. */
function logLines(event: VmBackupEvent): { level: 'info' | 'warning'; line: string }[] {
  switch (event.type) {
    case 'waiting-for-prune':
      return [{ level: 'info', line: `waiting for a prune to end (${event.holders.map((h) => `${h.host}, pid ${h.pid}, since ${h.started}`).join('; ')})` }];
    case 'hook-output':
      return event.data.toString('utf8').split('\n').filter((line) => line !== '').map((line) => ({ level: 'info' as const, line: `hook: ${line}` }));
    case 'warning':
      return [{ level: 'warning', line: `warning: ${event.message}` }];
  }
}

/** A task of another kind (kinds/): the same messages, its report as the result. */
async function runOther(message: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  let lastProgress = 0;
  try {
    const report = await runTaskKind(message.kind, message.spec, {
      signal: controller.signal,
      log: (line, level = 'info') => void send({ type: 'log', level, line }),
      progress: (done, total) => {
        const now = performance.now();
        if (now - lastProgress < PROGRESS_INTERVAL_MS && done < total) return;
        lastProgress = now;
        void send({ type: 'progress', done, total });
      },
      report: (report) => void send({ type: 'report', report }),
    });
    await send({ type: 'result', result: report });
    process.exit(0);
  } catch (error) {
    await fail(error);
  }
}

async function fail(error: unknown): Promise<never> {
  const code = isCofferError(error) ? error.code : controller.signal.aborted ? 'E_INTERRUPTED' : 'E_WORKER_FAILED';
  const text = controller.signal.aborted && !isCofferError(error) ? `interrupted: ${(controller.signal.reason as Error).message}` : (error as Error).message;
  await send({ type: 'error', code, message: text });
  process.exit(1);
}
