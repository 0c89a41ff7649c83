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
 * Where a range of a device's bytes lies, for a copy that moves them without reading them
 * into memory of its own (a convert's data clusters, copied file to file):
 * - `file`: the bytes of the open file descriptor `fd` from byte `at`, as they are;
 * - `zero`: reads as zeros;
 * - `read`: only {@link BlockDevice.read} gives them (compressed, encrypted, remote, patched).
 * Placements returned by {@link BlockDevice.placements} are ordered, do not overlap and cover
 * exactly the range asked for.
 */
export type Placement = { offset: number; length: number } & ({ kind: 'file'; fd: number; at: number } | { kind: 'zero' } | { kind: 'read' });

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
 * - `placements(offset, length)`, optional, says where the bytes of that range lie (see
 *   {@link Placement}); the descriptors it names stay open until `close()`. A device
 *   without it is read with `read`.
 * - `close()` releases resources; it is idempotent.
 */
export interface BlockDevice {
  readonly size: number;
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  extents(offset?: number, length?: number): AsyncIterable<Extent>;
  placements?(offset: number, length: number): AsyncIterable<Placement>;
  close(): Promise<void>;
}
