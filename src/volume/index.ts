/**
 * @module volume
 * What sits on a VM's disks: partition tables (MBR with logical partitions, GPT with its
 * backup header), LVM2 logical volumes (possibly across several disks), a filesystem on a
 * whole disk, and encrypted containers (listed, not opened). Each volume is a block device.
 */
export type { Volume, VolumeKind } from './volume.js';
