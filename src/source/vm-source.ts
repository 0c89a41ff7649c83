import type { BlockDevice } from '../blockdev/index.js';

/** One disk of a VM as a source offers it. */
export interface SourceDisk {
  /** Stable name within the VM (`disk0`, `sda`, `virtio0` …): matches disks across snapshots. */
  name: string;
  /** The format it was read from (`raw`, `qcow2`, `nbd` …), for the record. */
  format: string;
  /** Where it came from (a path, a URL), for the record. */
  location: string;
  device: BlockDevice;
  /**
   * The files of an image chain, top first, each with an identity that changes whenever
   * the file does (device, inode, size, modification time). Extents' `layer` numbers index
   * this list. Absent for sources without layers.
   */
  layers?: readonly ImageLayer[];
  /** Every file read besides the image itself (its backing chain, a VMDK descriptor's extent files), whatever they are; absent when none. */
  otherFiles?: readonly string[];
  /**
   * Change tracking the source offers for this disk. `since`: the device's extents carry
   * `changed` relative to the capture that left checkpoint `since` (the parent snapshot's
   * disk must record that checkpoint, or the flags are ignored). `unavailable`: why there is
   * none although the source tracks changes (a missing or inconsistent bitmap…).
   * `givenRanges`: the flags come from a list of changed ranges relative to the parent the
   * backup is told to use (`--changed-ranges FILE --base SNAPSHOT`); the string says where
   * the list came from.
   */
  changeTracking?: { since: string } | { unavailable: string } | { givenRanges: string };
  /** The checkpoint this capture leaves for the next backup (recorded in the snapshot). */
  checkpoint?: string;
  /**
   * Bytes each unit of the change tracking this capture leaves covers (the granularity of
   * the checkpoint's dirty bitmap): the next backup's changes come in these units. A format 2
   * backup cuts the disk into blocks of this size (backup/tracked-block-size.ts), so that a
   * changed unit is a whole block and consecutive backups of the disk line up. Absent: none.
   */
  changeGranularity?: number;
}

/** One file of an image chain, as recorded in a snapshot. */
export interface ImageLayer {
  path: string;
  identity: string;
}

/**
 * How consistent a capture is, recorded in the snapshot. `application`: the guest's
 * filesystems were frozen (flushed, writes held) through its agent at the instant of capture,
 * `frozenFilesystems` of them for `frozenMs` milliseconds. `crash`: the disks are as after a
 * power cut at that instant (journals replay on boot); `reason` says why nothing was frozen.
 */
export interface SourceConsistency {
  level: 'application' | 'crash';
  reason?: string;
  frozenFilesystems?: number;
  frozenMs?: number;
}

/**
 * Where a VM comes from: its definition and one block device per disk, all captured at the
 * same instant. Image files, running QEMU VMs (QMP + NBD) and libvirt domains implement it.
 */
export interface VmSource {
  readonly vm: string;
  /** The VM's definition as the hypervisor describes it, or null when there is none. */
  readonly definition: { format: string; data: Uint8Array } | null;
  readonly disks: readonly SourceDisk[];
  /** How consistent the capture is; absent when the source cannot tell (image files). */
  readonly consistency?: SourceConsistency;
  /**
   * Called once every disk is read, before the snapshot is recorded: throws if the capture
   * did not hold until then (a live VM's point-in-time view that broke while it was read,
   * see qemu/capture-guard.ts), and the backup fails. Optional.
   */
  confirm?(): Promise<void>;
  /**
   * Called once the snapshot is recorded: this capture's checkpoints become the reference
   * (a live source drops the older ones). Not called when the backup fails, so the previous
   * checkpoints keep covering every change. Optional.
   */
  commit?(): Promise<void>;
  /** Releases every device (and, for live VMs, ends the point-in-time view). Idempotent. */
  close(): Promise<void>;
}
