/**
 * Reading and editing an ext4 filesystem inside a disk image with e2fsprogs, without
 * mounting: `dumpe2fs` for geometry and free space, `debugfs` for file extents and for
 * writes, `e2fsck -fn` as the consistency check. Every function takes the image path and
 * the partition's byte offset and uses the `image?offset=N` syntax of e2fsprogs.
 *
 * @module
 */
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from './exec.js';

/** A run of filesystem blocks. */
export interface BlockRange {
  /** First block number (filesystem blocks, from the partition start). */
  readonly start: number;
  /** Number of blocks. */
  readonly count: number;
}

/** Size facts of a filesystem. */
export interface Geometry {
  readonly blockSize: number;
  readonly blockCount: number;
}

function spec(image: string, offset: number): string {
  return `${image}?offset=${offset}`;
}

/** Reads block size and count from the superblock. */
export async function readGeometry(image: string, offset: number): Promise<Geometry> {
  const { stdout } = await run('dumpe2fs', ['-h', spec(image, offset)]);
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(stdout);
    if (!m?.[1]) throw new Error(`dumpe2fs: no "${name}" in ${image}`);
    return Number(m[1]);
  };
  return { blockSize: field('Block size'), blockCount: field('Block count') };
}

/**
 * Parses the per-group "Free blocks: a-b, c, d-e" lines of `dumpe2fs` output.
 * Pure, exported for testing.
 */
export function parseFreeBlocks(dumpe2fsText: string): BlockRange[] {
  const ranges: BlockRange[] = [];
  for (const m of dumpe2fsText.matchAll(/^\s+Free blocks: (.*)$/gm)) {
    for (const part of (m[1] ?? '').split(',')) {
      const p = part.trim();
      if (p === '') continue;
      const [a, b] = p.split('-').map(Number);
      if (a === undefined || Number.isNaN(a)) continue;
      ranges.push({ start: a, count: (b ?? a) - a + 1 });
    }
  }
  return ranges.sort((x, y) => x.start - y.start);
}

/** Lists the free block ranges of the filesystem, sorted. */
export async function freeBlocks(image: string, offset: number): Promise<BlockRange[]> {
  const { stdout } = await run('dumpe2fs', [spec(image, offset)]);
  return parseFreeBlocks(stdout);
}

/** A run of a file's blocks: logical position in the file and physical place on disk. */
export interface Extent extends BlockRange {
  /** First logical block (index of the block within the file). */
  readonly logical: number;
  /** Allocated but unwritten: reads as zeros until initialized. */
  readonly uninit: boolean;
}

/**
 * Parses `debugfs -f` output made of one `ex -l PATH` per command into each file's leaf
 * extents, in logical order. Pure, exported for testing.
 */
export function parseExtents(debugfsText: string, count: number): Extent[][] {
  const sections = debugfsText.split(/^debugfs: /m).slice(1);
  const result: Extent[][] = [];
  const row = /^\s*\d+\/\s*\d+\s+\d+\/\s*\d+\s+(\d+)\s*-\s*\d+\s+(\d+)\s*-\s*\d+\s+(\d+)\s*(\S*)/;
  for (let i = 0; i < count; i++) {
    const extents: Extent[] = [];
    for (const line of (sections[i] ?? '').split('\n')) {
      const m = row.exec(line);
      if (!m) continue;
      extents.push({ logical: Number(m[1]), start: Number(m[2]), count: Number(m[3]), uninit: m[4] === 'Uninit' });
    }
    result.push(extents);
  }
  return result;
}

/** Runs a list of debugfs commands in one process; `write` opens the image read-write. */
async function debugfs(image: string, offset: number, commands: readonly string[], write: boolean): Promise<string> {
  const file = path.join(os.tmpdir(), `bench-debugfs-${process.pid}-${Date.now()}`);
  await writeFile(file, commands.join('\n') + '\n');
  const args = write ? ['-w', '-f', file, spec(image, offset)] : ['-f', file, spec(image, offset)];
  try {
    return (await run('debugfs', args)).stdout;
  } finally {
    await rm(file, { force: true });
  }
}

/**
 * Returns each file's leaf extents (one `debugfs` process for all of them).
 * Paths must not contain quotes or whitespace.
 */
export async function fileExtents(image: string, offset: number, paths: readonly string[]): Promise<Extent[][]> {
  const out = await debugfs(image, offset, paths.map((p) => `ex -l "${p}"`), false);
  return parseExtents(out, paths.length);
}

/** Runs debugfs commands that modify the filesystem (e.g. `rm`, `write`). */
export async function debugfsWrite(image: string, offset: number, commands: readonly string[]): Promise<void> {
  await debugfs(image, offset, commands, true);
}

/** Checks the filesystem read-only with `e2fsck -fn`; throws if it reports any problem. */
export async function checkFs(image: string, offset: number): Promise<void> {
  const out = await run('e2fsck', ['-fn', spec(image, offset)], { allowFail: true });
  if (out.code !== 0) {
    throw new Error(`e2fsck found problems in ${image} (exit ${out.code}):\n${out.stdout.slice(-2000)}`);
  }
}
