import { planBlocks, type BlockDevice } from '../blockdev/index.js';
import { isZeroEntry, type DiskIndexReader, type Repository } from '../repo/index.js';

/** Never more blocks than this per disk, whatever the percentage: a check, not a second backup. */
const MAX_SAMPLE = 4096;

/**
 * Trust, but verify, a change tracking the backup did not compute itself (CBT bugs have
 * produced corrupt backups in real products): reads and hashes a random `fraction` of the
 * blocks the tracking calls unchanged (at least one when there are any) and compares each with
 * the parent's entry. Returns a description of the first mismatch, or undefined when every
 * sampled block matches.
 */
export async function verifyUnchangedSample(
  repo: Repository,
  device: BlockDevice,
  parent: DiskIndexReader,
  fraction: number,
  random: () => number = Math.random,
): Promise<string | undefined> {
  const blockSize = parent.disk.blockSize; // the parent's blocks are the ones compared
  const unchanged: { index: number; offset: number; length: number }[] = [];
  for await (const block of planBlocks(device, blockSize, true)) if (block.action === 'unchanged') unchanged.push(block);
  if (unchanged.length === 0 || fraction <= 0) return undefined;
  const want = Math.min(MAX_SAMPLE, unchanged.length, Math.max(1, Math.round(unchanged.length * fraction)));
  // A partial Fisher–Yates shuffle: `want` distinct blocks, uniformly.
  for (let i = 0; i < want; i++) {
    const j = i + Math.floor(random() * (unchanged.length - i));
    [unchanged[i], unchanged[j]] = [unchanged[j] as (typeof unchanged)[number], unchanged[i] as (typeof unchanged)[number]];
  }
  for (const block of unchanged.slice(0, want).sort((a, b) => a.index - b.index)) {
    const data = await device.read(block.offset, block.length);
    const [hash] = await repo.pool.hashMany(data, [block.length]);
    const expected = block.index < parent.blockCount ? await parent.entry(block.index) : undefined;
    const same = hash !== undefined && expected !== undefined && (hash.zero ? isZeroEntry(expected) : hash.id !== null && expected.equals(hash.id));
    if (!same) return `block ${block.index} (bytes ${block.offset}-${block.offset + block.length - 1}) differs from the parent snapshot although the change tracking calls it unchanged`;
  }
  return undefined;
}
