import { syscalls } from './syscalls.js';

/**
 * Copies below this many bytes stay in JavaScript: a call into the addon costs ~70 ns, which
 * TypedArray#set spends on ~200 bytes even of shared memory (measured on these machines).
 */
const NATIVE_FROM_BYTES = 256;

/**
 * Copies `source` into `target` at `offset` (the ranges may overlap, as with
 * TypedArray#set). Large copies go through the addon's memcpy: V8 copies a typed array whose
 * memory is a SharedArrayBuffer with relaxed atomic stores, 3.6 GB/s against 50+ for ordinary
 * memory (20 times slower for a MiB), and Coffer's worker pool works in shared memory: frame
 * slots, read windows, the restore's pinned frames. No other thread may write either range
 * meanwhile (as everywhere Coffer copies: between one worker task and the next).
 */
export function copyBytes(target: Uint8Array, source: Uint8Array, offset = 0): void {
  if (source.length < NATIVE_FROM_BYTES) target.set(source, offset);
  else syscalls.copyBytes(target, offset, source);
}

/** Zeros that {@link fillZeros} copies from (never written). */
const ZEROS = new Uint8Array(1024 * 1024);

/**
 * Sets `target[from, to)` to zero, as `target.fill(0, from, to)` does. Ranges of
 * {@link NATIVE_FROM_BYTES} or more are copied from a MiB of zeros by the addon's memcpy: V8
 * fills a typed array over a SharedArrayBuffer one relaxed atomic store at a time, 2.6 GB/s
 * against 43 GB/s for the copy on these machines (2 MiB, 2026-11-28), and a disk reader fills
 * the unallocated parts of the blocks it reads into shared buffers.
 */
export function fillZeros(target: Uint8Array, from = 0, to = target.length): void {
  if (to - from < NATIVE_FROM_BYTES) {
    target.fill(0, from, to);
    return;
  }
  for (let at = from; at < to; at += ZEROS.length) copyBytes(target, ZEROS.subarray(0, Math.min(ZEROS.length, to - at)), at);
}
