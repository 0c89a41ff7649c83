/**
 * The XFS reader over mutated real images, for a bounded time: bytes of the metadata the
 * reader touches (found by recording a clean walk) are changed, half the time with the
 * checksums of the damaged inodes and blocks recomputed so that the damage gets past the CRC
 * checks into the parsers. open/readdir/lookup/read/fileExtents/readlink/xattrs must then succeed
 * or throw a CofferError, never anything else, and never hang (a per-operation timeout).
 * Replay: COFFER_FUZZ_SEED, COFFER_FUZZ_MS.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { BlockDevice, Extent } from '../../blockdev/index.js';
import { RawImage } from '../../disk/index.js';
import { isCofferError } from '../../errors/index.js';
import { buildXattrsXfsImage, buildXfsImage, requireTools, xfsFragmentedImage, seededRandom as random, withDeadline } from '../../testing/index.js';
import type { Filesystem, FsNode } from '../index.js';
import { crc32c } from './crc32c.js';
import { xfsDriver } from './index.js';

const BUDGET_MS = Number(process.env['COFFER_FUZZ_MS'] ?? 2000);
const OPERATION_MS = 2000;
const PIECE = 16 * 1024;
const images: Record<string, string> = {};

before(async () => {
  await requireTools('mkfs.xfs', 'xfs_repair', 'xfs_db');
  images['protofile'] = await buildXfsImage({ sizeMiB: 320, bigFileBytes: 3_000_000 });
  images['fragmented'] = await xfsFragmentedImage();
  images['xattrs'] = await buildXattrsXfsImage();
});

/** A real image with some bytes replaced (the image file itself is never written). */
class MutatedDevice implements BlockDevice {
  readonly size: number;
  readonly changes = new Map<number, number>();
  readonly pieces = new Set<number>();

  constructor(private readonly base: BlockDevice) {
    this.size = base.size;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = await this.base.read(offset, length, into);
    if (length === PIECE && offset % PIECE === 0) this.pieces.add(offset);
    for (const [at, value] of this.changes) if (at >= offset && at < offset + length) out[at - offset] = value;
    return out;
  }

  extents(offset?: number, length?: number): AsyncIterable<Extent> {
    return this.base.extents(offset, length);
  }

  async close(): Promise<void> {}
}


/** Recomputes the CRC of every XFS structure in the 4 KiB block at `blockOffset` (as a guest's kernel would have). */
async function fixChecksums(device: MutatedDevice, blockOffset: number): Promise<void> {
  const block = await device.read(blockOffset, 4096);
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const set = (start: number, length: number, crcAt: number): void => {
    const bytes = block.slice(start, start + length);
    bytes.fill(0, crcAt, crcAt + 4);
    const crc = crc32c(bytes);
    for (let i = 0; i < 4; i++) device.changes.set(blockOffset + start + crcAt + i, (crc >>> (8 * i)) & 0xff);
  };
  const magic32 = view.getUint32(0);
  const magic16 = view.getUint16(8);
  if (magic32 === 0x58465342) set(0, 512, 224);
  else if (magic32 === 0x424d4133) set(0, 4096, 64);
  else if (magic32 === 0x58444233 || magic32 === 0x58444433) set(0, 4096, 4);
  else if (magic32 === 0x58534c4d || magic32 === 0x5841524d) set(0, 4096, 12); // symlink, remote attribute value
  else if (magic16 === 0x3df1 || magic16 === 0x3dff || magic16 === 0x3ebe || magic16 === 0x3bee) set(0, 4096, 12);
  else for (let at = 0; at < 4096; at += 512) if (view.getUint16(at) === 0x494e) set(at, 512, 100);
}

const withTimeout = <T>(what: string, work: Promise<T>): Promise<T> => withDeadline(what, work, OPERATION_MS);

/** Walks up to `limit` nodes: every operation of the reader on each. */
async function exercise(device: BlockDevice, limit: number): Promise<void> {
  const fsys: Filesystem = await withTimeout('open', xfsDriver.open(device));
  const queue: FsNode[] = [await withTimeout('root', fsys.root())];
  const seen = new Set<string>();
  const attempt = async (what: string, work: () => Promise<unknown>): Promise<void> => {
    try {
      await withTimeout(what, work());
    } catch (error) {
      if (!isCofferError(error)) throw error;
    }
  };
  for (let node = queue.shift(); node !== undefined && seen.size < limit; node = queue.shift()) {
    if (seen.has(node.id)) continue;
    seen.add(node.id);
    const current = node;
    await attempt('xattrs', () => fsys.xattrs?.(current) ?? Promise.resolve());
    if (current.type === 'directory') {
      await attempt('readdir', async () => {
        const entries = await fsys.readdir(current);
        for (const e of entries.slice(0, 50)) if (e.node !== undefined) queue.push(e.node);
        for (const e of entries.slice(0, 3)) await fsys.lookup?.(current, e.name);
      });
    } else if (current.type === 'file') {
      await attempt('read', () => fsys.read(current, 0, 65536));
      await attempt('read tail', () => fsys.read(current, Math.max(0, current.size - 5000), 10000));
      await attempt('fileExtents', async () => {
        let n = 0;
        for await (const _ of fsys.fileExtents?.(current) ?? []) if (++n > 20000) break;
      });
    } else if (current.type === 'symlink') {
      await attempt('readlink', () => fsys.readlink(current));
    }
  }
}

for (const name of ['protofile', 'fragmented', 'xattrs']) {
  test(`fuzz xfs (${name} image): damaged metadata reads or fails with a CofferError, never hangs`, async () => {
    const seed = Number(process.env['COFFER_FUZZ_SEED'] ?? Date.now() % 2 ** 31);
    const next = random(seed);
    const base = await RawImage.open(images[name] as string);
    try {
      const clean = new MutatedDevice(base);
      await exercise(clean, 400);
      const pieces = [...clean.pieces];
      assert.ok(pieces.length > 3, 'the clean walk reads metadata');
      const started = Date.now();
      let runs = 0;
      // At least 6 runs whatever the machine's load (each has its own deadline), then until the budget is spent.
    while (runs < 6 || Date.now() - started < BUDGET_MS) {
        runs += 1;
        const device = new MutatedDevice(base);
        const flips = 1 + Math.floor(next() * 6);
        for (let i = 0; i < flips; i++) {
          const at = (pieces[Math.floor(next() * pieces.length)] as number) + Math.floor(next() * PIECE);
          device.changes.set(at, next() < 0.3 ? 0xff : Math.floor(next() * 256));
        }
        if (next() < 0.5) for (const at of [...device.changes.keys()]) await fixChecksums(device, at - (at % 4096));
        try {
          await exercise(device, 200);
        } catch (error) {
          if (!isCofferError(error)) assert.fail(`seed ${seed}, run ${runs}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
        }
      }
    } finally {
      await base.close();
    }
  });
}
