/**
 * Worker processes: each task runs in its own child process (a fork at low CPU and I/O
 * priority), so a crash or an out-of-memory in one backup never takes the server down. The
 * parent talks to it over IPC (worker-protocol.ts): start, bandwidth share, cancel; progress,
 * log lines, result. `kinds/` holds the task kinds besides backup (restore, verify, prune,
 * forget, sync, test restore, instant recovery).
 */
export { startWorker, type WorkerHandle, type WorkerListener, type WorkerOptions, type WorkerOutcome } from './worker-process.js';
export { PROGRESS_INTERVAL_MS, type FromWorker, type ToWorker, type WorkerProgress, type WorkerRates } from './worker-protocol.js';
export { runTaskKind, qemuCommand, type KindContext, type TaskReport, type ForgetSpec, type InstantRecoverySpec, type PruneSpec, type RepositoryRef, type RestoreSpec, type SyncSpec, type TestRestoreSpec, type TestRestoreBoot, type VerifySpec } from './kinds/index.js';
