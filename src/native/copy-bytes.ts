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
