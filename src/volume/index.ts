/**
 * @module volume
 * What sits on a VM's disks: partition tables (MBR with logical partitions, GPT with its
 * backup header), LVM2 logical volumes (possibly across several disks), a filesystem on a
 * whole disk, and encrypted containers (listed, not opened). Each volume is a block device.
 * {@link listVolumes} finds them all; every structure read from a disk is bounds-checked and
 * capped, since a guest's disk is untrusted input.
 */
export type { Volume, VolumeKind } from './volume.js';
export { listVolumes } from './list-volumes.js';
export type { VolumeSegment } from './volume.js';
export { volumeRangesOnDisk, type VolumePiece } from './disk-ranges.js';
