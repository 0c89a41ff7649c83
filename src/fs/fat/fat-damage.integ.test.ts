/**
 * Damaged FAT volumes: the real FAT12 fixture with chosen bytes changed (a looping chain, an
 * out-of-range cluster, a size beyond the chain, broken long names...). Each damage gives
 * E_FS_CORRUPT for what it touches, or the 8.3 fallback for long names, and leaves the rest
 * readable.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, test } from 'node:test';
import { RawImage } from '../../disk/index.js';
import type { Filesystem, FsNode } from '../index.js';
import { fatDriver } from './index.js';
import { buildFatImage, deriveDisk, requireTools } from '../../testing/index.js';

let image: string;
let original: Buffer;
/** Geometry of the fixture, read from its boot sector. */
let fatOffset: number;
let fatBytes: number;
let fatCount: number;
/** Ids of the fixture's nodes by root name (read from the undamaged image). */
const ids = new Map<string, { cluster: number; position: number }>();

before(async () => {
  await requireTools('mformat', 'mcopy', 'fsck.fat');
  image = await buildFatImage({ sizeMiB: 4, fatBits: 12, label: 'FLOPPY' });
  original = await readFile(image);
  const bytesPerSector = original.readUInt16LE(11);
  fatOffset = original.readUInt16LE(14) * bytesPerSector;
  fatCount = original.readUInt8(16);
  fatBytes = original.readUInt16LE(22) * bytesPerSector;
  await withFs(image, async (fs) => {
    for (const entry of await fs.readdir(await fs.root())) {
      const match = /^[fd](\d+)(?:@(\d+))?$/.exec(entry.node!.id)!;
      ids.set(entry.name, { cluster: Number(match[1]), position: Number(match[2] ?? -1) });
    }
  });
});

async function withFs<T>(path: string, use: (fs: Filesystem) => Promise<T>): Promise<T> {
  const device = await RawImage.open(path);
  try {
    return await use(await fatDriver.open(device));
  } finally {
    await device.close();
  }
}

function id(name: string): { cluster: number; position: number } {
  const found = ids.get(name);
  assert.ok(found, name);
  return found;
}

/** The FAT12 entry of `cluster` in the undamaged image. */
function fatEntry(cluster: number): number {
  const word = original.readUInt16LE(fatOffset + cluster + (cluster >> 1));
  return cluster & 1 ? word >> 4 : word & 0xfff;
}

/** Edits setting the FAT12 entry of `cluster` to `value` in every FAT copy. */
function setFatEntry(cluster: number, value: number): { offset: number; bytes: Buffer }[] {
  const edits = [];
  for (let copy = 0; copy < fatCount; copy++) {
    const at = fatOffset + copy * fatBytes + cluster + (cluster >> 1);
    const word = original.readUInt16LE(at);
    const bytes = Buffer.alloc(2);
    bytes.writeUInt16LE(cluster & 1 ? (word & 0x000f) | (value << 4) : (word & 0xf000) | value);
    edits.push({ offset: at, bytes });
  }
  return edits;
}

/** The clusters of a chain in the undamaged image. */
function chainOf(first: number): number[] {
  const chain = [first];
  while (fatEntry(chain[chain.length - 1]!) < 0xff8) chain.push(fatEntry(chain[chain.length - 1]!));
  return chain;
}

async function rootEntry(fs: Filesystem, name: string): Promise<FsNode> {
  const node = await fs.lookup!(await fs.root(), name);
  assert.ok(node, name);
  return node;
}

test('a chain that loops back is E_FS_CORRUPT for that file only', async () => {
  const chain = chainOf(id('fragmented.bin').cluster);
  assert.ok(chain.length > 3);
  const damaged = await deriveDisk(image, 'fat-damage-loop', setFatEntry(chain[2]!, chain[0]!));
  await withFs(damaged, async (fs) => {
    const file = await rootEntry(fs, 'fragmented.bin');
    await assert.rejects(fs.read(file, 0, file.size), { code: 'E_FS_CORRUPT', message: /loops/ });
    assert.equal((await fs.read(await rootEntry(fs, 'big.bin'), 0, 1 << 20)).length, 1 << 20);
  });
});

test('a cluster number beyond the volume stops the read with E_FS_CORRUPT; what precedes it reads', async () => {
  const chain = chainOf(id('big.bin').cluster);
  const damaged = await deriveDisk(image, 'fat-damage-range', setFatEntry(chain[1]!, 0xff0));
  const expected = await withFs(image, async (good) => good.read(await rootEntry(good, 'big.bin'), 0, 2 * good.blockSize));
  await withFs(damaged, async (fs) => {
    const file = await rootEntry(fs, 'big.bin');
    const clusterSize = fs.blockSize;
    assert.deepEqual(await fs.read(file, 0, 2 * clusterSize), expected);
    await assert.rejects(fs.read(file, 0, 3 * clusterSize), { code: 'E_FS_CORRUPT', message: /0xff0/ });
    await assert.rejects(async () => {
      for await (const _ of fs.fileExtents!(file)) {
        // the map of a broken chain ends in an error, not in a short map
      }
    }, { code: 'E_FS_CORRUPT' });
  });
});

test('a size beyond the chain is E_FS_CORRUPT past the chain, never a hang', async () => {
  const { position } = id('frag-a.bin');
  const size = Buffer.alloc(4);
  size.writeUInt32LE(50_000);
  const damaged = await deriveDisk(image, 'fat-damage-size', [{ offset: position + 28, bytes: size }]);
  await withFs(damaged, async (fs) => {
    const file = await rootEntry(fs, 'frag-a.bin');
    assert.equal(file.size, 50_000);
    assert.equal((await fs.read(file, 0, 5000)).length, 5000);
    await assert.rejects(fs.read(file, 0, 50_000), { code: 'E_FS_CORRUPT', message: /chain ends after 5120/ });
  });
});

test('a huge size on a short chain and a first cluster out of range are errors of those files', async () => {
  const size = Buffer.alloc(4);
  size.writeUInt32LE(0xffffffff);
  const cluster = Buffer.alloc(2);
  cluster.writeUInt16LE(0xfff);
  const damaged = await deriveDisk(image, 'fat-damage-entries', [
    { offset: id('frag-c.bin').position + 28, bytes: size },
    { offset: id('readonly.txt').position + 26, bytes: cluster },
  ]);
  await withFs(damaged, async (fs) => {
    const entries = await fs.readdir(await fs.root());
    const bad = entries.find((e) => e.name === 'readonly.txt')!;
    assert.equal(bad.error?.code, 'E_FS_CORRUPT');
    assert.equal(bad.node, undefined);
    assert.equal(entries.filter((e) => e.error).length, 1);
    const huge = await rootEntry(fs, 'frag-c.bin');
    await assert.rejects(fs.read(huge, 0, 1 << 20), { code: 'E_FS_CORRUPT' });
    await assert.rejects(fs.lookup!(await fs.root(), 'READONLY.TXT'), { code: 'E_FS_CORRUPT' });
  });
});

test('a directory whose chain loops is an error entry; the rest of its parent reads', async () => {
  const chain = chainOf(id('docs').cluster);
  assert.ok(chain.length > 1, 'docs spans several clusters');
  const damaged = await deriveDisk(image, 'fat-damage-dir-loop', setFatEntry(chain[chain.length - 1]!, chain[0]!));
  await withFs(damaged, async (fs) => {
    const entries = await fs.readdir(await fs.root());
    const docs = entries.find((e) => e.name === 'docs')!;
    assert.equal(docs.error?.code, 'E_FS_CORRUPT');
    assert.match(docs.error!.message, /loops/);
    assert.equal(entries.filter((e) => e.node).length, entries.length - 1);
  });
});

test('a long name whose checksum fails falls back to the 8.3 name with its NT case flags', async () => {
  const { position } = id('Mixed Case Name.txt');
  const slot = original.subarray(position - 32, position);
  assert.equal(slot[11], 0x0f, 'a long-name slot precedes the short entry');
  const damaged = await deriveDisk(image, 'fat-damage-lfn', [
    { offset: position - 32 + 13, bytes: Buffer.from([slot[13]! ^ 0x55]) },
    { offset: position + 12, bytes: Buffer.from([0x18]) },
  ]);
  await withFs(damaged, async (fs) => {
    const names = (await fs.readdir(await fs.root())).map((e) => e.name);
    assert.ok(!names.includes('Mixed Case Name.txt'));
    assert.ok(names.includes('mixedc~1.txt'), names.join(', '));
    assert.ok((await fs.lookup!(await fs.root(), 'MIXEDC~1.TXT'))?.type === 'file');
  });
});

test('orphaned long-name slots (their short entry deleted) name nothing', async () => {
  const { position } = id('Mixed Case Name.txt');
  const damaged = await deriveDisk(image, 'fat-damage-orphan', [{ offset: position, bytes: Buffer.from([0xe5]) }]);
  await withFs(damaged, async (fs) => {
    const names = (await fs.readdir(await fs.root())).map((e) => e.name);
    const before = await withFs(image, async (good) => (await good.readdir(await good.root())).map((e) => e.name));
    assert.deepEqual(names, before.filter((n) => n !== 'Mixed Case Name.txt'));
  });
});

test('the FAT type comes from the cluster count, not from the type string', async () => {
  const damaged = await deriveDisk(image, 'fat-damage-typestring', [{ offset: 54, bytes: Buffer.from('FAT32   ') }]);
  await withFs(damaged, async (fs) => assert.equal(fs.type, 'fat12'));
});
