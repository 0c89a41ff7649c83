/**
 * @module server
 * Coffer as a service: the state database, the REST API with authentication and roles, the
 * task runner and its worker processes, and the repository server that guest agents write to.
 * Stands on jobs, backup and restore; nothing below imports it.
 */
export * from './state/index.js';
export * from './tasks/index.js';
export * from './scheduler/index.js';
export { startWorker, type WorkerHandle, type WorkerOptions, type WorkerOutcome, type WorkerRates } from './worker/index.js';
