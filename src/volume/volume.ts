import type { BlockDevice } from '../blockdev/index.js';

/**
 * A run of a logical volume as it lies on the disks: `length` bytes from `start` in the
 * volume over `stripes.length` areas, each at byte `offset` of VM disk `disk` (or on a PV
 * none of the disks holds). One stripe is linear; with N, chunks of `stripeSize` bytes go
 * round-robin over the areas (chunk c on stripe c mod N, at row ⌊c / N⌋ of that area).
 */
export interface VolumeSegment {
  readonly start: number;
  readonly length: number;
  readonly stripeSize: number;
  readonly stripes: readonly ({ disk: number; offset: number } | { missing: string })[];
}

/** Where a volume comes from. */
export type VolumeKind = 'partition' | 'logical-volume' | 'whole-disk';

/**
 * Something on a VM's disks that may hold a filesystem: a partition, an LVM logical volume,
 * or a whole disk with no partition table.
 */
export interface Volume {
  /**
   * The name users type: `p1`, `p5` (partition numbers as Linux numbers them: MBR logical
   * partitions from 5), `vg0/root` (volume group / logical volume), `disk` (no partition
   * table). Partition names repeat across disks: `disk` says which.
   */
  readonly name: string;
  readonly kind: VolumeKind;
  /** The index of the VM disk it lies on (for a logical volume: of its first segment). */
  readonly disk: number;
  /** Byte offset on that disk (partitions and whole disks; absent for logical volumes). */
  readonly offset?: number;
  readonly size: number;
  /**
   * What the partition table says it is: an MBR type (`0x83`) or a GPT type GUID, with a
   * short description (`Linux filesystem`, `EFI System`, `Microsoft basic data`,
   * `Linux LVM`, `extended`…). Informational only: filesystems are found by their superblock.
   */
  readonly partitionType?: string;
  readonly typeDescription?: string;
  /** GPT partition name, LVM logical volume name ('' when none). */
  readonly label?: string;
  /** GPT partition GUID, or LVM LV UUID. */
  readonly uuid?: string;
  /** Set when the volume holds an encrypted container: its files cannot be read. */
  readonly encrypted?: 'luks' | 'bitlocker';
  /** Set when the volume is an LVM physical volume (its logical volumes are listed separately). */
  readonly lvmPhysicalVolume?: { vg: string; uuid: string };
  /** Notes for the user (a GPT read from its backup header, a missing PV of a VG…). */
  readonly warnings?: readonly string[];
  /**
   * Logical volumes: where their bytes lie on the disks (partitions and whole disks lie at
   * `offset` of `disk`). Absent for logical volumes Coffer cannot read.
   */
  readonly segments?: readonly VolumeSegment[];
  /** The volume's bytes. */
  readonly device: BlockDevice;
}
