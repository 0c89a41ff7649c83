/**
 * @module testing
 * Helpers for Coffer's own tests, never imported by the product: real test disks built by real
 * tools (sfdisk, mke2fs) and cached across test files and processes, deterministic
 * pseudo-random bytes, and a check that the tools a test needs are installed.
 */
export {
  fixtureDir,
  buildExt4Disk,
  buildSparseDiskBeyond4G,
  deriveDisk,
  seededBytes,
  requireTools,
} from './disks.js';
export type { PartitionedDisk, Ext4DiskOptions } from './disks.js';
