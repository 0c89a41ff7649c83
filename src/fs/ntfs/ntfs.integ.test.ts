/**
 * The NTFS reader against real volumes made by mkntfs + wimlib (buildNtfsImage), at three
 * cluster sizes (512 B: index blocks of several clusters; 4 KiB: the default; 128 KiB: the
 * 2^-n sectors-per-cluster encoding and index blocks smaller than a cluster). Oracles:
 * ntfs-3g's `ntfsls` (names, MFT numbers, sizes, mtimes) and `ntfscat` (contents, streams),
 * plus the source tree itself (exact mtimes, link targets, hard links).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SliceDevice } from '../../blockdev/index.js';
import { RawImage } from '../../disk/index.js';
import { buildExt4Disk, buildNtfsImage, FS_TREE_LINKS, NTFS_SERIAL, NTFS_STREAMS, requireTools, runTool, writeFsTree } from '../../testing/index.js';
import type { Filesystem, FsNode } from '../index.js';
import { ntfsDriver } from './index.js';

const BIG = 3_000_000;
const MiB = 1024 * 1024;
let tree: string;

before(async () => {
  await requireTools('mkntfs', 'wimlib-imagex', 'ntfscp', 'ntfsfix', 'ntfsls', 'ntfscat');
  tree = await fsp.mkdtemp(path.join(os.tmpdir(), 'coffer-ntfs-tree-'));
  await writeFsTree(tree, { bigFileBytes: BIG });
});
after(() => fsp.rm(tree, { recursive: true, force: true }));

interface Walked {
  node: FsNode;
  name: string;
  parent: FsNode;
}

/** Every entry below the root by path (`/docs/readme.txt`); fails on any entry error. */
async function walk(fs: Filesystem): Promise<Map<string, Walked>> {
  const out = new Map<string, Walked>();
  const visit = async (dir: FsNode, prefix: string): Promise<void> => {
    for (const entry of await fs.readdir(dir)) {
      assert.equal(entry.error, undefined, `${prefix}/${entry.name}: ${entry.error?.message}`);
      const node = entry.node!;
      out.set(`${prefix}/${entry.name}`, { node, name: entry.name, parent: dir });
      if (node.type === 'directory') await visit(node, `${prefix}/${entry.name}`);
    }
  };
  await visit(await fs.root(), '');
  return out;
}

/** `ntfsls -R -l -i -p /` (in UTC): path → MFT number, size, mtime to the minute. */
async function ntfsls(image: string): Promise<Map<string, { id: string; size: number; minute: number }>> {
  const text = await runTool('env', ['TZ=UTC', 'ntfsls', '-R', '-l', '-i', '-p', '/', image]);
  const out = new Map<string, { id: string; size: number; minute: number }>();
  let dir = '';
  for (const line of text.split('\n')) {
    const header = /^(\/.*):$/.exec(line);
    if (header) {
      dir = header[1] === '/' ? '' : header[1]!;
      continue;
    }
    const m = /^\s*(\d+)\s+(\d+)\s+(\w{3})\s+(\d+) (\d\d):(\d\d) (\d{4}) (.*)$/.exec(line);
    if (!m || m[8] === '.' || m[8] === '..') continue;
    const minute = Date.parse(`${m[3]} ${m[4]} ${m[7]} ${m[5]}:${m[6]}:00 UTC`);
    out.set(`${dir}/${m[8]}`, { id: m[1]!, size: Number(m[2]), minute });
  }
  return out;
}

async function sha256Of(fs: Filesystem, node: FsNode): Promise<string> {
  const hash = createHash('sha256');
  for (let offset = 0; offset < node.size; offset += 4 * MiB) hash.update(await fs.read(node, offset, 4 * MiB));
  return hash.digest('hex');
}

for (const clusterSize of [4096, 512, 131072]) {
  describe(`NTFS with ${clusterSize}-byte clusters`, () => {
    let image: string;
    let device: RawImage;
    let fs: Filesystem;
    let entries: Map<string, Walked>;

    before(async () => {
      image = await buildNtfsImage({ sizeMiB: 96, bigFileBytes: BIG, clusterSize });
      device = await RawImage.open(image);
      assert.ok(await ntfsDriver.probe(device));
      fs = await ntfsDriver.open(device);
      entries = await walk(fs);
    });
    after(() => device?.close());

    test('volume: label, serial, geometry', () => {
      assert.equal(fs.type, 'ntfs');
      assert.equal(fs.label, 'CofferNTFS');
      assert.equal(fs.uuid, NTFS_SERIAL);
      assert.equal(fs.blockSize, clusterSize);
      assert.equal(fs.size, 96 * MiB - 512); // mkntfs leaves the last sector to the backup boot sector
      assert.equal(fs.caseInsensitive, true);
    });

    test('every name, MFT number, size and mtime matches ntfsls', async () => {
      const listing = await ntfsls(image);
      assert.deepEqual([...entries.keys()].sort(), [...listing.keys()].sort());
      for (const [p, { node }] of entries) {
        const expected = listing.get(p)!;
        assert.equal(node.id, expected.id, p);
        if (node.type === 'file') assert.equal(node.size, expected.size, p);
        assert.equal(Math.floor(node.mtimeMs / 60000) * 60000, expected.minute, p);
      }
    });

    test('every file reads as ntfscat reads it', async () => {
      // ntfsls gave the sizes; one ntfscat per non-empty file (all of them at 4 KiB clusters).
      for (const [p, { node }] of entries) {
        if (node.type !== 'file' || node.size === 0 || (clusterSize !== 4096 && p.startsWith('/many/') && !p.endsWith('7.txt'))) continue;
        const reference = createHash('sha256').update(await runBuffer('ntfscat', [image, p])).digest('hex');
        assert.equal(await sha256Of(fs, node), reference, p);
      }
    });

    test('every entry matches the source tree: type, size, content, mtime, link target', async () => {
      const expected = new Set<string>();
      const visit = async (dir: string): Promise<void> => {
        for (const name of await fsp.readdir(path.join(tree, dir))) {
          const rel = `${dir}/${name}`;
          expected.add(rel);
          const st = await fsp.lstat(path.join(tree, rel));
          const got = entries.get(rel)?.node;
          assert.ok(got, `${rel} missing`);
          assert.equal(got.mtimeMs, st.mtimeMs, `${rel} mtime`);
          if (st.isDirectory()) {
            assert.equal(got.type, 'directory', rel);
            assert.equal(got.mode, 0o755);
            await visit(rel);
          } else if (st.isSymbolicLink()) {
            assert.equal(got.type, 'symlink', rel);
            const target = await fs.readlink(got);
            assert.equal(target, await fsp.readlink(path.join(tree, rel)), rel);
            assert.equal(got.size, Buffer.byteLength(target));
            assert.ok(got.attributes?.includes('reparse:symlink'));
          } else {
            assert.equal(got.type, 'file', rel);
            assert.equal(got.size, st.size, rel);
            assert.equal(got.mode, 0o644);
            const want = createHash('sha256').update(await fsp.readFile(path.join(tree, rel))).digest('hex');
            assert.equal(await sha256Of(fs, got), want, rel);
          }
        }
      };
      await visit('');
      assert.deepEqual([...entries.keys()].sort(), [...expected].sort());
      assert.deepEqual(Object.keys(FS_TREE_LINKS).sort(), ['absolute', 'dangling', 'dir-link', 'long-target', 'relative']);
    });

    test('hard links are one node with two names', () => {
      const a = entries.get('/docs/notes.txt')!.node;
      const b = entries.get('/links/hard-link')!.node;
      assert.equal(a.id, b.id);
      assert.equal(a.nlink, 2);
      assert.equal(entries.get('/docs/readme.txt')!.node.nlink, 1);
    });

    test('lookup descends the index, ignoring case; metadata files are found but not listed', async () => {
      for (const [p, { node, name, parent }] of entries) {
        assert.equal((await fs.lookup!(parent, name))?.id, node.id, p);
        const upper = name.toUpperCase();
        if (upper.length === name.length) assert.equal((await fs.lookup!(parent, upper))?.id, node.id, `${p} as ${upper}`);
      }
      const root = await fs.root();
      assert.equal(await fs.lookup!(root, 'no-such-file'), undefined);
      assert.equal(await fs.lookup!(entries.get('/wide')!.node, 'w1500'), undefined);
      assert.equal(await fs.lookup!(entries.get('/wide')!.node, 'w0000a'), undefined);
      assert.equal((await fs.lookup!(root, '$MFT'))?.id, '0');
      assert.equal((await fs.lookup!(root, '$upcase'))?.id, '10');
      assert.ok(![...entries.keys()].some((p) => p.startsWith('/$')));
    });

    test('alternate data streams are listed and read as ntfscat -n reads them', async () => {
      for (const s of NTFS_STREAMS) {
        const node = entries.get(s.path)!.node;
        assert.deepEqual(node.streams?.find((x) => x.name === s.stream), { name: s.stream, size: Buffer.byteLength(s.content), xattr: `user.${s.stream}` });
        const got = Buffer.from(await fs.readStream!(node, s.stream, 0, 1 << 20));
        assert.equal(got.toString(), s.content);
        assert.deepEqual(got, await runBuffer('ntfscat', ['-n', s.stream, image, s.path]));
        assert.equal(Buffer.from(await fs.readStream!(node, s.stream, 5, 3)).toString(), s.content.slice(5, 8));
      }
      await assert.rejects(fs.readStream!(entries.get('/docs/readme.txt')!.node, 'nope', 0, 10), { code: 'E_PATH_NOT_FOUND' });
      assert.equal(entries.get('/docs/notes.txt')!.node.streams, undefined);
    });

    test('sparse.img: holes are zero extents, data where it was written', async () => {
      const node = entries.get('/sparse.img')!.node;
      assert.ok(node.attributes?.includes('sparse'));
      const extents = [];
      for await (const e of fs.fileExtents!(node)) extents.push(e);
      assert.equal(extents.reduce((n, e) => n + e.length, 0), 64 * MiB);
      for (let i = 1; i < extents.length; i++) assert.equal(extents[i]!.offset, extents[i - 1]!.offset + extents[i - 1]!.length);
      const data = extents.filter((e) => e.kind === 'data');
      const round = (x: number): number => Math.floor(x / clusterSize) * clusterSize;
      // Whole clusters, except past the initialized size (40 MiB + 64 KiB), which reads as zeros.
      assert.deepEqual(data.map((e) => e.offset), [0, MiB, 40 * MiB].map(round));
      for (const e of data) assert.ok(e.length >= 65536 && e.length <= Math.max(clusterSize, 65536), JSON.stringify(e));
      const big = entries.get('/big.bin')!.node;
      const bigExtents = [];
      for await (const e of fs.fileExtents!(big)) bigExtents.push(e);
      assert.deepEqual(bigExtents, [{ offset: 0, length: BIG, kind: 'data' }]);
    });

    test('reads are clipped to the size and agree at any offset', async () => {
      const node = entries.get('/big.bin')!.node;
      const source = await fsp.readFile(path.join(tree, 'big.bin'));
      for (const [offset, length] of [[0, 1], [BIG - 10, 100], [12345, 70000], [clusterSize - 1, clusterSize + 2], [BIG, 5], [BIG + 100, 5]] as const) {
        const got = await fs.read(node, offset, length);
        assert.deepEqual(Buffer.from(got), source.subarray(offset, Math.min(BIG, offset + length)), `${offset}+${length}`);
      }
      const sparse = entries.get('/sparse.img')!.node;
      assert.ok((await fs.read(sparse, 2 * MiB, 4096)).every((b) => b === 0));
      assert.equal((await fs.read(entries.get('/docs')!.node, 0, 10)).length, 0);
    });
  });
}

test('probe refuses what is not NTFS: an MBR disk, an ext4 partition, zeros', async () => {
  await requireTools('sfdisk', 'mke2fs');
  const disk = await buildExt4Disk({ name: 'ntfs-probe-ext4', size: 48 * MiB, label: 'dos', partitionSizeMiB: 32, files: 'small' });
  const device = await RawImage.open(disk.path);
  try {
    assert.equal(await ntfsDriver.probe(device), false);
    const part = disk.partitions[0]!;
    assert.equal(await ntfsDriver.probe(new SliceDevice(device, part.start, part.size)), false);
    assert.equal(await ntfsDriver.probe(new SliceDevice(device, 40 * MiB, 4 * MiB)), false);
  } finally {
    await device.close();
  }
  const image = await buildNtfsImage({ sizeMiB: 96, bigFileBytes: BIG });
  const ntfs = await RawImage.open(image);
  try {
    // A volume cut short is not offered as NTFS (its boot sector claims more than the device).
    assert.equal(await ntfsDriver.probe(new SliceDevice(ntfs, 0, 32 * MiB)), false);
  } finally {
    await ntfs.close();
  }
});

async function runBuffer(tool: string, args: string[]): Promise<Buffer> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(tool, args, { encoding: 'buffer', maxBuffer: 256 * MiB }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}
