/**
 * The FAT reader over mutated real volumes, for a bounded time: whatever the bytes of the
 * boot sector, the FATs and the directories, open/readdir/lookup/read/fileExtents/readlink
 * either succeed or throw a CofferError; never another error, never a hang (each operation
 * has a deadline). The seed is printed on failure (COFFER_FUZZ_SEED, COFFER_FUZZ_MS replay).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import type { BlockDevice, Extent } from '../../blockdev/index.js';
import { assertReadInBounds } from '../../blockdev/index.js';
import { isCofferError } from '../../errors/index.js';
import type { Filesystem, FsNode } from '../index.js';
import { fatDriver } from './index.js';
import { buildFatImage, requireTools, seededRandom as random, withDeadline as deadlineOf } from '../../testing/index.js';

const BUDGET_MS = Number(process.env.COFFER_FUZZ_MS ?? 2000);
const OPERATION_MS = 2000;

/** The real fixture's bytes with some changed (kept apart: the image is not copied per run). */
class MutatedDevice implements BlockDevice {
  constructor(
    private readonly bytes: Uint8Array,
    private readonly changes: ReadonlyMap<number, number>,
  ) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    const out = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    out.set(this.bytes.subarray(offset, offset + length));
    for (const [at, value] of this.changes) if (at >= offset && at < offset + length) out[at - offset] = value;
    return out;
  }
  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    yield { offset, length, kind: 'data' };
  }
  async close(): Promise<void> {}
}


const withDeadline = <T>(what: string, work: Promise<T>): Promise<T> => deadlineOf(what, work, OPERATION_MS);

/** Walks everything (bounded: 400 nodes), reading each file's head and tail and its map. */
async function exercise(fs: Filesystem): Promise<void> {
  const queue: FsNode[] = [await fs.root()];
  let visited = 0;
  while (queue.length > 0 && visited < 400) {
    const dir = queue.shift()!;
    for (const entry of await withDeadline('readdir', fs.readdir(dir))) {
      if (!entry.node || ++visited > 400) continue;
      const node = entry.node;
      if (node.type === 'directory') {
        queue.push(node);
        await withDeadline('lookup', fs.lookup!(dir, entry.name.toUpperCase())).catch(rethrowUnlessCoffer);
      } else {
        await withDeadline('read', fs.read(node, 0, 65536)).catch(rethrowUnlessCoffer);
        await withDeadline('read tail', fs.read(node, Math.max(0, node.size - 5000), 5000)).catch(rethrowUnlessCoffer);
        await withDeadline('fileExtents', (async () => {
          for await (const _ of fs.fileExtents!(node)) {
            // the map must end
          }
        })()).catch(rethrowUnlessCoffer);
        await fs.readlink(node).catch(rethrowUnlessCoffer);
      }
    }
  }
}

function rethrowUnlessCoffer(error: unknown): void {
  if (!isCofferError(error)) throw error;
}

const CASES = [
  { name: 'FAT12', build: () => buildFatImage({ sizeMiB: 4, fatBits: 12, label: 'FLOPPY' }) },
  { name: 'FAT32', build: () => buildFatImage({ sizeMiB: 128, fatBits: 32, bigFileBytes: 3_000_000 }) },
];

for (const fixture of CASES) {
  test(`fuzz ${fixture.name}: mutated metadata reads or fails with a CofferError, never hangs`, async (t) => {
    await requireTools('mformat', 'mcopy', 'fsck.fat');
    const original = await readFile(await fixture.build());
    const reserved = original.readUInt16LE(14) * original.readUInt16LE(11);
    const fatBytes = (original.readUInt16LE(22) || original.readUInt32LE(36)) * original.readUInt16LE(11);
    // The boot sector, the first FAT's start, the root directory and the first directory
    // clusters (mtools writes directories before their files' data).
    const regions = [
      { from: 0, to: 512 },
      { from: reserved, to: reserved + Math.min(fatBytes, 16384) },
      { from: reserved + original.readUInt8(16) * fatBytes, to: reserved + original.readUInt8(16) * fatBytes + 131072 },
    ];
    const seed = Number(process.env.COFFER_FUZZ_SEED ?? Date.now() % 2 ** 31);
    const next = random(seed);
    const started = Date.now();
    let runs = 0;
    let opened = 0;
    // Past the budget only until a few runs, one of them opening, happened (never more than 10,000).
    while ((runs <= 5 || opened === 0 || Date.now() - started < BUDGET_MS) && runs < 10_000) {
      runs += 1;
      const changes = new Map<number, number>();
      for (let flips = 1 + Math.floor(next() * 6); flips > 0; flips--) {
        const region = regions[Math.floor(next() * regions.length)]!;
        const at = region.from + Math.floor(next() * (region.to - region.from));
        changes.set(at, next() < 0.3 ? 0xff : next() < 0.3 ? 0 : Math.floor(next() * 256));
      }
      try {
        const device = new MutatedDevice(original, changes);
        if (!(await withDeadline('probe', fatDriver.probe(device)))) continue;
        const fs = await withDeadline('open', fatDriver.open(device));
        opened += 1;
        await exercise(fs);
      } catch (error) {
        if (!isCofferError(error)) {
          assert.fail(`seed ${seed}, run ${runs}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
        }
      }
    }
    t.diagnostic(`seed ${seed}: ${runs} runs, ${opened} opened`);
    assert.ok(opened > 0, `none of ${runs} runs opened a filesystem`);
  });
}
