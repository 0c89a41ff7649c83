/**
 * @module concurrency
 * The small tools the pipelines share to bound their work: a limit on tasks in flight (over a
 * list, or a semaphore for a tree walked recursively), a
 * fixed pool of shared-memory buffers (whose size is the pipeline's whole memory budget, and
 * which cross to worker threads without a copy), and a token bucket that holds a byte stream
 * to a rate (bandwidth limits).
 */
export { Fifo } from './fifo.js';
export { forEachLimited } from './for-each-limited.js';
export { Slots } from './slots.js';
export { SharedBufferPool } from './shared-buffer-pool.js';
export { RateLimiter, type RateLimiterOptions } from './rate-limiter.js';
