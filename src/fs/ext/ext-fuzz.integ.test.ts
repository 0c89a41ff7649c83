/**
 * The ext reader over real images whose metadata blocks (those a clean walk reads: the
 * superblock, group descriptors, inode tables, directory, extent and indirect blocks) get a
 * few random bytes changed: every operation either succeeds or throws a CofferError, and
 * none takes longer than a second. The seed is printed on failure (COFFER_FUZZ_SEED,
 * COFFER_FUZZ_MS replay or lengthen a run).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BlockDevice } from '../../blockdev/index.js';
import { PatchedDevice } from '../../blockdev/patched-device.test-support.js';
import { RawImage } from '../../disk/index.js';
import { isCofferError } from '../../errors/index.js';
import { buildExtImage, requireTools, type ExtVariant, seededRandom as random, withDeadline } from '../../testing/index.js';
import type { FsNode } from '../index.js';
import { extDriver } from './index.js';

const BUDGET_MS = Number(process.env.COFFER_FUZZ_MS ?? 800);
const MIN_RUNS = 3;
const OPERATION_MS = 1000;
const MAX_NODES = 150;



const timed = <T>(what: string, work: Promise<T>): Promise<T> => withDeadline(what, work, OPERATION_MS);

/** Opens and walks (bounded) the filesystem on `device`, exercising every operation. */
async function exercise(device: BlockDevice): Promise<void> {
  const fs = await timed('open', extDriver.open(device));
  const queue: FsNode[] = [await timed('root', fs.root())];
  const seen = new Set<string>();
  let visited = 0;
  while (queue.length > 0 && visited < MAX_NODES) {
    const node = queue.shift()!;
    visited++;
    await timed('xattrs', fs.xattrs!(node));
    if (node.type === 'directory') {
      if (seen.has(node.id)) continue;
      seen.add(node.id);
      const entries = await timed('readdir', fs.readdir(node));
      for (const e of entries.slice(0, 40)) if (e.node !== undefined) queue.push(e.node);
      const first = entries[0];
      if (first !== undefined) await timed('lookup', fs.lookup!(node, first.name));
      await timed('lookup of an absent name', fs.lookup!(node, 'no-such-name'));
    } else if (node.type === 'file') {
      await timed('read', fs.read(node, 0, 65536));
      await timed('read at the end', fs.read(node, Math.max(0, node.size - 5000), 10000));
      await timed('fileExtents', (async () => { let n = 0; for await (const _ of fs.fileExtents!(node)) if (++n > 100_000) break; })());
    } else if (node.type === 'symlink') {
      await timed('readlink', fs.readlink(node));
    }
  }
}

for (const variant of ['ext4', 'ext4-inline', 'ext2-1k'] as ExtVariant[]) {
  test(`fuzz ${variant}: damaged metadata reads or fails with a CofferError, never hangs`, async () => {
    await requireTools('mke2fs', 'e2fsck');
    const image = await buildExtImage({ sizeMiB: 96, bigFileBytes: 3_000_000, variant });
    const base = await RawImage.open(image);
    try {
      const clean = new PatchedDevice(base, new Map());
      await exercise(clean);
      const blockSize = variant === 'ext2-1k' ? 1024 : 4096;
      const metadata = [...new Set(clean.reads.filter((r) => r.length <= blockSize).map((r) => r.offset))];
      assert.ok(metadata.length > 10, `${metadata.length} metadata reads`);
      const seed = Number(process.env.COFFER_FUZZ_SEED ?? Date.now() % 2 ** 31);
      const next = random(seed);
      const started = Date.now();
      let runs = 0;
      // At least a few runs however slow the machine (the budget bounds time, not coverage).
      while (runs < MIN_RUNS || Date.now() - started < BUDGET_MS) {
        runs++;
        const patches = new Map<number, number>();
        const flips = 1 + Math.floor(next() * 8);
        for (let i = 0; i < flips; i++) {
          const at = metadata[Math.floor(next() * metadata.length)]! + Math.floor(next() * blockSize);
          patches.set(at, next() < 0.3 ? 0xff : Math.floor(next() * 256));
        }
        try {
          await exercise(new PatchedDevice(base, patches));
        } catch (error) {
          if (!isCofferError(error)) {
            assert.fail(`seed ${seed}, run ${runs}: ${error instanceof Error ? error.stack : String(error)}`);
          }
        }
      }
    } finally {
      await base.close();
    }
  });
}
