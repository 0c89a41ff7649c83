/**
 * What an extent holds.
 * - `data`: may hold non-zero bytes; it must be read to be known.
 * - `zero`: reads as zeros; readers need not read it (a hole, a zero cluster, unallocated).
 */
export type ExtentKind = 'data' | 'zero';

/**
 * A range of a block device. Extents returned by {@link BlockDevice.extents} are ordered,
 * do not overlap, and cover exactly the range asked for.
 */
export interface Extent {
  offset: number;
  length: number;
  kind: ExtentKind;
  /**
   * Change tracking, when the device knows it (dirty bitmaps, the top layer of a backing
   * chain): `false` means the range is identical to the reference point the device was
   * opened against (so a backup may take it from the parent snapshot without reading it);
   * `true` means it changed; absent means unknown (treat as changed).
   */
  changed?: boolean;
  /**
   * For images with a backing chain: which layer holds the range, 0 being the image opened
   * (the top), 1 its backing file, and so on. Absent for devices without layers, and for
   * zero ranges that no layer allocates.
   */
  layer?: number;
}

/**
 * A random-access, read-only virtual disk.
 *
 * Contract:
 * - `size` is fixed for the life of the object.
 * - `read(offset, length, into?)` returns exactly `length` bytes (written into `into`, which
 *   may be shared memory, when given; otherwise into a new buffer), or throws: `E_SOURCE_SHRUNK` when
 *   the underlying storage got shorter than `size`, `E_SOURCE_UNREADABLE` on I/O errors,
 *   `E_CORRUPT_OBJECT`/`E_MISSING_OBJECT` for devices backed by a repository. Reads outside
 *   `[0, size)` throw a `RangeError` (a caller bug). Concurrent reads are allowed.
 *   The returned buffer belongs to the caller (it may be transferred to a worker).
 * - `extents(offset, length)` yields the map of that range (default: the whole device).
 *   A device that knows nothing about allocation yields one `data` extent.
 * - `close()` releases resources; it is idempotent.
 */
export interface BlockDevice {
  readonly size: number;
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  extents(offset?: number, length?: number): AsyncIterable<Extent>;
  close(): Promise<void>;
}
