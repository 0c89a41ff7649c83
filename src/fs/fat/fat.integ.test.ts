/**
 * The FAT reader against mtools on real FAT12, FAT16 and FAT32 volumes: every file and
 * directory (long names, types, sizes, sha256 of the content, mtimes, attributes), the label
 * and serial, case-insensitive lookup, reads at any offset, and the extent map.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { RawImage } from '../../disk/index.js';
import type { Filesystem, FsNode } from '../index.js';
import { fatDriver } from './index.js';
import { buildFatImage, FAT_SMALL_TREE, readFatWithMtools, requireTools, runMtools, type MtoolsEntry } from '../../testing/index.js';

const MiB = 1024 * 1024;

const FIXTURES = [
  { name: 'FAT12', type: 'fat12', build: () => buildFatImage({ sizeMiB: 4, fatBits: 12, label: 'FLOPPY' }) },
  { name: 'FAT16', type: 'fat16', build: () => buildFatImage({ sizeMiB: 200, fatBits: 16, bigFileBytes: 3_000_000, label: 'COFFER16' }) },
  { name: 'FAT32', type: 'fat32', build: () => buildFatImage({ sizeMiB: 128, fatBits: 32, bigFileBytes: 3_000_000 }) },
] as const;

interface Walked {
  node: FsNode;
  sha256: string;
}

/** Every node below `dir` by path, content hashed by reads of at most 4 MiB. */
async function walk(fs: Filesystem, dir: FsNode, prefix = '', out = new Map<string, Walked>()): Promise<Map<string, Walked>> {
  for (const entry of await fs.readdir(dir)) {
    assert.ok(entry.node, `${prefix}${entry.name}: ${entry.error?.message}`);
    const path = prefix + entry.name;
    let sha256 = '';
    if (entry.node.type === 'file') {
      const hash = createHash('sha256');
      for (let at = 0; at < entry.node.size; at += 4 * MiB) hash.update(await fs.read(entry.node, at, 4 * MiB));
      sha256 = hash.digest('hex');
    }
    out.set(path, { node: entry.node, sha256 });
    if (entry.node.type === 'directory') await walk(fs, entry.node, `${path}/`, out);
  }
  return out;
}

before(() => requireTools('mformat', 'mcopy', 'mdir', 'mattrib', 'fsck.fat'));

for (const fixture of FIXTURES) {
  describe(`${fixture.name} image built by mtools`, () => {
    let device: RawImage;
    let fs: Filesystem;
    let oracle: Awaited<ReturnType<typeof readFatWithMtools>>;
    let walked: Map<string, Walked>;

    before(async () => {
      const image = await fixture.build();
      device = await RawImage.open(image);
      fs = await fatDriver.open(device);
      oracle = await readFatWithMtools(image);
      walked = await walk(fs, await fs.root());
    });
    after(() => device.close());

    test('probe and open: type by cluster count, label and serial as mdir prints them', async () => {
      assert.equal(await fatDriver.probe(device), true);
      assert.equal(fs.type, fixture.type);
      assert.equal(fs.label, oracle.label);
      assert.equal(fs.uuid, oracle.serial);
      assert.equal(fs.size, device.size);
      assert.equal(fs.caseInsensitive, true);
    });

    test('every file and directory: name, type, size, sha256, mtime and attributes as mtools reads them', () => {
      const expected = new Map<string, MtoolsEntry>();
      for (const [path, entry] of oracle.entries) {
        // mcopy writes a short name's non-ASCII letters unchanged where the NT lower-case flag
        // asks for lower case (mdir itself shows `café`, as Windows and Linux do).
        expected.set(fixture.type === 'fat12' && path === 'cafÉ.txt' ? 'café.txt' : path, entry);
      }
      assert.deepEqual([...walked.keys()].sort(), [...expected.keys()].sort());
      assert.ok(expected.size > (fixture.type === 'fat12' ? 55 : 1700), `the oracle found only ${expected.size} entries`);
      for (const [path, want] of expected) {
        const { node, sha256 } = walked.get(path)!;
        assert.equal(node.type, want.type, path);
        if (want.type === 'file') {
          assert.equal(node.size, want.size, path);
          assert.equal(sha256, want.sha256, path);
        } else {
          assert.ok(node.size > 0 && node.size % fs.blockSize === 0, `${path}: directory of ${node.size} bytes`);
        }
        assert.equal(node.mtimeMs, want.mtimeMs, path);
        const letters = (node.attributes ?? []).map((a) => ({ archive: 'A', hidden: 'H', system: 'S', readonly: 'R' })[a] ?? '?').join('');
        assert.equal([...letters].sort().join(''), [...want.attributes].sort().join(''), path);
        assert.equal(node.mode, want.type === 'directory' ? 0o755 : want.attributes.includes('R') ? 0o444 : 0o644, path);
        assert.deepEqual([node.uid, node.gid, node.nlink], [0, 0, 1]);
        assert.ok(Number.isNaN(node.ctimeMs));
        assert.ok(node.birthtimeMs > 0 && node.atimeMs > 0, `${path}: creation and access dates`);
      }
    });

    test('lookup ignores case and finds 8.3 aliases; missing names are undefined', async () => {
      for (const [path, { node }] of walked) {
        let at = await fs.root();
        for (const part of path.split('/')) {
          const found = await fs.lookup!(at, part.length % 2 ? part.toUpperCase() : part.toLowerCase());
          assert.ok(found, `${path}: ${part} not found`);
          at = found;
        }
        assert.equal(at.id, node.id, path);
      }
      assert.equal(await fs.lookup!(await fs.root(), 'no-such-file'), undefined);
      if (fixture.type !== 'fat12') {
        const many = walked.get('many')!.node;
        const alias = await fs.lookup!(many, 'ENTRY-~1.TXT');
        assert.ok(alias && alias.type === 'file', 'the 8.3 alias of a long name');
        const dir = await fs.lookup!(await fs.root(), 'EMPTY-~1');
        assert.equal(dir?.id, walked.get('empty-dir')!.node.id);
      }
    });

    test('reads at any offset match the content; past the end is empty; extents cover the file', async () => {
      const name = fixture.type === 'fat12' ? 'fragmented.bin' : 'big.bin';
      const { node } = walked.get(name)!;
      const whole = await fs.read(node, 0, node.size);
      assert.equal(createHash('sha256').update(whole).digest('hex'), oracle.entries.get(name)!.sha256);
      for (const [offset, length] of [[1, 1], [fs.blockSize - 3, 7], [5000, 3 * fs.blockSize + 11], [node.size - 10, 100], [node.size, 10], [node.size + 1, 5]] as const) {
        const got = await fs.read(node, offset, length);
        assert.ok(Buffer.from(got).equals(whole.subarray(offset, offset + length)), `read ${offset}+${length}`);
      }
      assert.equal((await fs.read(walked.get(fixture.type === 'fat12' ? 'empty.dat' : 'docs/empty.txt')!.node, 0, 10)).length, 0);
      let covered = 0;
      for await (const extent of fs.fileExtents!(node)) {
        assert.equal(extent.offset, covered);
        covered += extent.length;
      }
      assert.equal(covered, node.size);
    });

    test('readlink: FAT has no links', async () => {
      const { node } = [...walked.values()].find((w) => w.node.type === 'file')!;
      await assert.rejects(fs.readlink(node), { code: 'E_FS_UNSUPPORTED' });
    });
  });
}

test('FAT12: deleted entries are skipped, attributes and 8.3 case forms as written', async () => {
  const image = await buildFatImage({ sizeMiB: 4, fatBits: 12, label: 'FLOPPY' });
  const device = await RawImage.open(image);
  try {
    const fs = await fatDriver.open(device);
    const names = (await fs.readdir(await fs.root())).map((e) => e.name);
    for (const deleted of FAT_SMALL_TREE.deleted) assert.ok(!names.includes(deleted.split('/').pop()!), deleted);
    const docs = (await fs.lookup!(await fs.root(), 'docs'))!;
    assert.equal((await fs.readdir(docs)).length, 40);
    assert.ok(docs.size > 4 * fs.blockSize, 'docs spans several clusters');
    assert.deepEqual(names.filter((n) => /^(README|lower|UPPER|Mixed)/.test(n)), ['README.TXT', 'lower.txt', 'UPPER.txt', 'Mixed Case Name.txt']);
    const hidden = (await fs.lookup!(await fs.root(), 'HIDDEN.TXT'))!;
    assert.deepEqual(hidden.attributes, ['hidden', 'archive']);
    assert.match(await runMtools('mdir', ['-i', image, '::']), /^café +txt +20 /m);
    assert.equal(await fatDriver.probe(device), true);
  } finally {
    await device.close();
  }
});
