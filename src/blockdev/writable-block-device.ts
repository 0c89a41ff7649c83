import type { BlockDevice } from './block-device.js';

/**
 * A block device that can also be written: what a writable NBD export serves (instant
 * recovery writes to a copy-on-write overlay over a read-only snapshot disk).
 *
 * Contract, on top of {@link BlockDevice}:
 * - `size` stays fixed; every range must lie in `[0, size)` (else a RangeError: the server
 *   checks first and answers the client with an NBD error).
 * - `write(offset, data)` stores `data`; later `read`s and `extents` see it once the promise
 *   resolves. Concurrent writes to disjoint ranges are allowed; the outcome of concurrent
 *   overlapping writes is either one (as with a disk).
 * - `writeZeroes(offset, length)` makes the range read as zeros (it may deallocate it unless
 *   `keepAllocated`).
 * - `trim(offset, length)` says the range is no longer needed: its contents become
 *   unspecified (zeros, old data); doing nothing is a valid implementation.
 * - `flush()` makes every write that resolved before it durable.
 * - Errors are `CofferError`s: `E_NO_SPACE` when storage runs out, `E_TARGET_UNWRITABLE` or
 *   `E_BACKEND_IO` otherwise.
 */
export interface WritableBlockDevice extends BlockDevice {
  write(offset: number, data: Uint8Array): Promise<void>;
  writeZeroes(offset: number, length: number, options?: { keepAllocated?: boolean }): Promise<void>;
  trim(offset: number, length: number): Promise<void>;
  flush(): Promise<void>;
}
