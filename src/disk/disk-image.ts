import type { BlockDevice } from '../blockdev/index.js';

/** The formats Coffer reads, by the names qemu-img uses for them. */
export type DiskFormat = 'raw' | 'qcow2' | 'vmdk' | 'vpc' | 'vhdx';

/**
 * A disk image as a block device, with what it is: its format, its file, and the image it
 * is layered on (its backing file, parent, or delta parent), if any. `close()` closes the
 * whole chain.
 */
export interface DiskImage extends BlockDevice {
  readonly format: DiskFormat;
  readonly path: string;
  readonly backing: DiskImage | null;
  /** Format-specific facts for `coffer disk info` (cluster size, version, subformat …). */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
  /** Internal snapshots the image holds (qcow2), whichever one is being read. */
  readonly internalSnapshots?: readonly InternalSnapshot[];
  /** The internal snapshot being read instead of the current state (qcow2 `--image-snapshot`). */
  readonly snapshotRead?: InternalSnapshot;
  /**
   * Every file this image's own bytes are read from, `path` first: a VMDK's descriptor and its
   * extent files (`-flat.vmdk`, `-s001.vmdk` …). Absent: `path` alone. A backing image's files
   * are its own.
   */
  readonly files?: readonly string[];
}

/** An internal snapshot of an image (qcow2 `qemu-img snapshot -c`). */
export interface InternalSnapshot {
  id: string;
  name: string;
  /** ISO 8601 UTC. */
  date: string;
  /** Virtual size when it was taken, when recorded. */
  size: number | null;
}

/** The formats, as `--source-format` and a qcow2's backing format name them. */
export const DISK_FORMATS: readonly DiskFormat[] = ['raw', 'qcow2', 'vmdk', 'vpc', 'vhdx'];

/** How to open an image. */
export interface OpenImageOptions {
  /** Read this internal snapshot (name or id) instead of the current state (qcow2 only). */
  snapshot?: string;
  /**
   * The image's format, not probed from its content: `raw` for a raw disk or logical volume
   * whose guest may have written what looks like an image header at its start (a guest must
   * not make Coffer open host files as its backing chain); any other is checked against the
   * content.
   */
  format?: DiskFormat;
}

/**
 * Opens a backing image named by another image, resolved relative to that image's folder, in
 * `format` when the naming image records it (a qcow2's backing format; a VMDK, VHD or VHDX
 * parent is of its child's format), else probed from its content. Passed down to format
 * readers so any format can back any other without the readers importing each other; it
 * bounds the chain depth and refuses cycles.
 */
export type BackingOpener = (reference: string, from: string, format?: DiskFormat) => Promise<DiskImage>;
