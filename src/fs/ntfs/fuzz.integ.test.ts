/**
 * The NTFS reader over real volumes with damaged metadata, for a bounded time: boot sector,
 * MFT records and index blocks get random bytes; opening, listing, looking up, reading files
 * and streams, listing extents, reading extended attributes and links then either work or throw a CofferError,
 * never anything else, and every operation ends within a deadline. The seed is printed on
 * failure (COFFER_FUZZ_SEED, COFFER_FUZZ_MS replay and lengthen a run).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { bufferDevice, type BlockDevice } from '../../blockdev/index.js';
import { PatchedDevice } from '../../blockdev/patched-device.test-support.js';
import { isCofferError } from '../../errors/index.js';
import { buildNtfsImage, ntfsExtrasImage, ntfsStreamsImage, seededRandom as random, withDeadline } from '../../testing/index.js';
import type { Filesystem, FsNode } from '../index.js';
import { ntfsDriver } from './index.js';

const BUDGET_MS = Number(process.env['COFFER_FUZZ_MS'] ?? 2000);
const OPERATION_MS = 2000;



/** Where the metadata lies: the boot sector, the MFT's records in use, every INDX block. */
function metadataRegions(image: Buffer): [number, number][] {
  const clusterSize = image.readUInt16LE(0x0b) * image[0x0d]!;
  const mft = Number(image.readBigUInt64LE(0x30)) * clusterSize;
  const regions: [number, number][] = [[0, 512], [mft, 1024 * 1024]];
  for (let at = 0; at + 4 <= image.length; at += 512) if (image.toString('latin1', at, at + 4) === 'INDX') regions.push([at, 4096]);
  return regions;
}

/** Runs `operation` with a deadline. */
const within = <T>(what: string, operation: () => Promise<T>): Promise<T> => withDeadline(what, operation(), OPERATION_MS);

/** Everything a restore does, over a bounded number of nodes. */
async function exercise(device: BlockDevice): Promise<void> {
  const fs: Filesystem = await within('open', () => ntfsDriver.open(device));
  const queue: FsNode[] = [await within('root', () => fs.root())];
  let visited = 0;
  while (queue.length > 0 && visited < 120) {
    const node = queue.shift()!;
    visited++;
    await attempt(async () => {
      if (node.type === 'directory') {
        const entries = await within('readdir', () => fs.readdir(node));
        for (const entry of entries.slice(0, 30)) if (entry.node !== undefined) queue.push(entry.node);
        const first = entries[0];
        if (first !== undefined) await within('lookup', () => fs.lookup!(node, first.name.toUpperCase()));
      } else if (node.type === 'symlink') {
        await within('readlink', () => fs.readlink(node));
      } else {
        await within('read', () => fs.read(node, 0, 65536));
        await within('read tail', () => fs.read(node, Math.max(0, node.size - 5000), 5000));
        await within('extents', async () => {
          let n = 0;
          for await (const _ of fs.fileExtents!(node)) if (++n > 100_000) break;
        });
        for (const stream of node.streams ?? []) await within('stream', () => fs.readStream!(node, stream.name, 0, 4096));
      }
    });
    await attempt(async () => {
      await within('xattrs', () => fs.xattrs!(node));
    });
  }
}

/** Damage is fine as a CofferError; anything else fails the test. */
async function attempt(operation: () => Promise<void>): Promise<void> {
  try {
    await operation();
  } catch (error) {
    if (!isCofferError(error)) throw error;
  }
}

const IMAGES: { name: string; path: () => Promise<string> }[] = [
  { name: 'mkntfs + wimlib volume', path: () => buildNtfsImage({ sizeMiB: 96, bigFileBytes: 3_000_000 }) },
  { name: 'ntfs-3g volume with compressed files and an attribute list', path: ntfsExtrasImage },
  { name: 'ntfs-3g volume with streams of every kind', path: ntfsStreamsImage },
];

for (const image of IMAGES) {
  test(`fuzz NTFS (${image.name}): damaged metadata reads or fails with a CofferError, in bounded time`, async () => {
    const seed = Number(process.env['COFFER_FUZZ_SEED'] ?? Date.now() % 2 ** 31);
    const next = random(seed);
    const base = await readFile(await image.path());
    const regions = metadataRegions(base);
    const started = Date.now();
    let runs = 0;
    // At least 6 runs whatever the machine's load (each has its own deadline), then until the budget is spent.
    while (runs < 6 || Date.now() - started < BUDGET_MS) {
      runs++;
      const patches = new Map<number, number>();
      const flips = 1 + Math.floor(next() * 12);
      for (let i = 0; i < flips; i++) {
        const [start, length] = regions[next() < 0.6 ? 1 : Math.floor(next() * regions.length)]!;
        const at = start + Math.floor(next() * Math.min(length, base.length - start));
        patches.set(at, next() < 0.3 ? 0xff : Math.floor(next() * 256));
      }
      try {
        await attempt(() => exercise(new PatchedDevice(bufferDevice(base), patches)));
      } catch (error) {
        assert.fail(`seed ${seed}, run ${runs}: ${error instanceof Error ? `${error.name}: ${error.message}\n${error.stack}` : String(error)}`);
      }
    }
  });
}
