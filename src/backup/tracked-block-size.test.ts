import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockSizeForDisk, blocksPerFrameFor, MIN_TRACKED_BLOCK_SIZE } from './tracked-block-size.js';

const KiB = 1024;

test('a tracked disk in a format 2 repository is cut into blocks of its granularity, within bounds', () => {
  const cases: { version: 1 | 2; blockSize: number; granularity: number | undefined; want: number; why: string }[] = [
    { version: 2, blockSize: 256 * KiB, granularity: 64 * KiB, want: 64 * KiB, why: 'QEMU checkpoint: a dirty granule is a whole block' },
    { version: 2, blockSize: 256 * KiB, granularity: undefined, want: 256 * KiB, why: 'no change tracking: the repository\'s' },
    { version: 1, blockSize: 256 * KiB, granularity: 64 * KiB, want: 256 * KiB, why: 'format 1 pays per chunk object: the repository\'s' },
    { version: 2, blockSize: 256 * KiB, granularity: 4 * KiB, want: MIN_TRACKED_BLOCK_SIZE, why: 'never below 64 KiB' },
    { version: 2, blockSize: 256 * KiB, granularity: 128 * KiB, want: 128 * KiB, why: 'a coarser bitmap' },
    { version: 2, blockSize: 256 * KiB, granularity: 2048 * KiB, want: 256 * KiB, why: 'never above the repository\'s block size' },
    { version: 2, blockSize: 1024 * KiB, granularity: 96 * KiB, want: 128 * KiB, why: 'a granularity that is no power of two is rounded up' },
    { version: 2, blockSize: 32 * KiB, granularity: 64 * KiB, want: 32 * KiB, why: 'a repository of smaller blocks keeps its own' },
    { version: 2, blockSize: 256 * KiB, granularity: 0, want: 256 * KiB, why: 'a zero granularity is none' },
  ];
  for (const c of cases) assert.equal(blockSizeForDisk({ version: c.version, blockSize: c.blockSize }, c.granularity), c.want, c.why);
});

test('frames keep holding 2 MiB when a tracked disk has smaller blocks; other runs keep 8 chunks a frame', () => {
  const cases: { blockSize: number; disks: number[]; want: number; why: string }[] = [
    { blockSize: 256 * KiB, disks: [256 * KiB], want: 8, why: 'image files: 8 × 256 KiB' },
    { blockSize: 256 * KiB, disks: [64 * KiB, 64 * KiB], want: 32, why: 'a live VM: 32 × 64 KiB' },
    { blockSize: 256 * KiB, disks: [256 * KiB, 128 * KiB], want: 16, why: 'the smallest block of the run decides' },
    { blockSize: 64 * KiB, disks: [64 * KiB], want: 8, why: 'a repository of 64 KiB blocks keeps its frames of 8' },
    { blockSize: 16 * KiB, disks: [4 * KiB], want: 64, why: 'never more than a frame can hold (MAX_CHUNKS_PER_FRAME)' },
    { blockSize: 256 * KiB, disks: [], want: 8, why: 'no disk' },
  ];
  for (const c of cases) assert.equal(blocksPerFrameFor({ blockSize: c.blockSize }, c.disks), c.want, c.why);
});
