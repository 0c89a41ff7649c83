/**
 * @module concurrency
 * The two small tools the pipelines share to bound their work: a limit on tasks in flight,
 * and a fixed pool of shared-memory buffers (whose size is the pipeline's whole memory
 * budget, and which cross to worker threads without a copy).
 */
export { forEachLimited } from './for-each-limited.js';
export { SharedBufferPool } from './shared-buffer-pool.js';
