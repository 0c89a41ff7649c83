import { chunksPerImageFrame, type RepositoryConfig } from '../repo/index.js';

/**
 * The smallest block a disk with change tracking is cut into: QEMU's default dirty bitmap
 * granularity (a qcow2's 64 KiB cluster), and the point below which a block's 80-byte
 * located entry and per-chunk work outweigh what finer tracking saves
 * (docs/decisions/2026-11-26-live-block-size.md).
 */
export const MIN_TRACKED_BLOCK_SIZE = 64 * 1024;

/**
 * The block size one disk's backup uses. A format 2 repository cuts a disk whose source
 * tracks changes in units of `changeGranularity` bytes (a dirty bitmap's granularity) into
 * blocks of that size, within [{@link MIN_TRACKED_BLOCK_SIZE}, the repository's block size]:
 * a dirty granule is then a whole block, stored as it is read, and an incremental never
 * patches a block out of its parent's chunk. Format 1 (one object per chunk) and disks
 * without change tracking keep the repository's block size. Each snapshot records its
 * disks' block sizes, so readers need nothing from here.
 *
 * @example blockSizeForDisk({ version: 2, blockSize: 256 * 1024 }, 64 * 1024) // 65536
 */
export function blockSizeForDisk(config: Pick<RepositoryConfig, 'version' | 'blockSize'>, changeGranularity: number | undefined): number {
  if (config.version !== 2 || changeGranularity === undefined || !(changeGranularity > 0)) return config.blockSize;
  // Blocks are powers of two: a granularity that is not one is rounded up to the next.
  const granule = 2 ** Math.ceil(Math.log2(changeGranularity));
  return Math.min(config.blockSize, Math.max(MIN_TRACKED_BLOCK_SIZE, granule));
}

/**
 * Chunks per pack frame for one backup run whose disks use `blockSizes`: a frame closes at
 * 2 MiB of blocks or at this many, 8 by default (8 × 256 KiB). When a tracked disk's blocks are
 * smaller than the repository's, its frames still hold 2 MiB (32 × 64 KiB), so compression and
 * the frames a restore decodes stay as they were. Disks at the repository's block size keep
 * the default, whatever it is.
 */
export function blocksPerFrameFor(config: Pick<RepositoryConfig, 'blockSize'>, blockSizes: readonly number[]): number {
  return chunksPerImageFrame(config.blockSize, Math.min(config.blockSize, ...blockSizes));
}
