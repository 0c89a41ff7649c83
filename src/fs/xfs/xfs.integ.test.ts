/**
 * The XFS reader against xfs_db on real images: the shared tree written by `mkfs.xfs -p`
 * (short-form, leaf and node directories, inline symlinks, 3 MB file) and the fragmented
 * image made on a loop mount (B+tree block map, unwritten extents, holes, hard links, block
 * directory, remote symlink, devices, bigtime). For every path: name, inode number, type,
 * size, mode, owner, link count, the four times, and the sha256 of the content read through
 * Coffer against the blocks xfs_db's block map names; lookups through the hash index; and
 * the source tree (or the fragmented image's recipe) as a second oracle. A third image holds
 * names and a symlink target that are not UTF-8, which must come back as their bytes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { RawImage } from '../../disk/index.js';
import { isCofferError } from '../../errors/index.js';
import {
  buildByteNamesXfsImage, buildExt4Disk, buildXfsImage, BYTE_NAMES, cachedFixture, requireTools, runTool, writeFsTree, xfsDbFileBytes,
  xfsDbGeometry, xfsDbTree, xfsFragmentedImage, FS_TREE_LINKS, type XfsDbNode,
} from '../../testing/index.js';
import { resolvePath, type Filesystem, type FsFileExtent, type FsNode } from '../index.js';
import { encodeName, printableName } from '../../names/index.js';
import { xfsDriver } from './index.js';

const BIG = 3_000_000;
const MiB = 1024 * 1024;
let treeImage: string;
let fragmentedImage: string;

before(async () => {
  await requireTools('mkfs.xfs', 'xfs_repair', 'xfs_db');
  [treeImage, fragmentedImage] = await Promise.all([buildXfsImage({ sizeMiB: 320, bigFileBytes: BIG }), xfsFragmentedImage()]);
});

const TYPES: Record<string, string> = {
  regular: 'file', directory: 'directory', symlink: 'symlink', chardev: 'char-device', blkdev: 'block-device', fifo: 'fifo', socket: 'socket',
};

async function withFs<T>(image: string, body: (fs: Filesystem) => Promise<T>): Promise<T> {
  const device = await RawImage.open(image);
  try {
    return await body(await xfsDriver.open(device));
  } finally {
    await device.close();
  }
}

/** Every path below the root as Coffer reads it, each directory's entries also looked up by name. */
async function walk(fsys: Filesystem): Promise<Map<string, FsNode>> {
  const out = new Map<string, FsNode>([['/', await fsys.root()]]);
  const pending = ['/'];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    const node = out.get(dir) as FsNode;
    for (const entry of await fsys.readdir(node)) {
      assert.equal(entry.error, undefined, `${dir}/${entry.name}: ${entry.error?.message}`);
      const child = entry.node as FsNode;
      const p: string = `${dir === '/' ? '' : dir}/${entry.name}`;
      out.set(p, child);
      assert.equal((await fsys.lookup?.(node, entry.name))?.id, child.id, `lookup of ${p}`);
      if (child.type === 'directory') pending.push(p);
    }
    assert.equal(await fsys.lookup?.(node, 'no-such-name'), undefined);
  }
  return out;
}

async function sha256Of(fsys: Filesystem, file: FsNode): Promise<string> {
  const hash = createHash('sha256');
  for (let at = 0; at < file.size; at += 4 * MiB) hash.update(await fsys.read(file, at, 4 * MiB));
  return hash.digest('hex');
}

/** Coffer's reading of `image` equals xfs_db's, path by path; returns both for further checks. */
async function compareWithXfsDb(image: string): Promise<{ ours: Map<string, FsNode>; db: Map<string, XfsDbNode>; shas: Map<string, string> }> {
  const db = await xfsDbTree(image);
  const geometry = await xfsDbGeometry(image);
  const shas = new Map<string, string>();
  const ours = await withFs(image, async (fsys) => {
    const nodes = await walk(fsys);
    for (const [p, node] of nodes) {
      if (node.type === 'file') shas.set(p, await sha256Of(fsys, node));
    }
    return nodes;
  });
  assert.deepEqual([...ours.keys()].sort(), [...db.keys()].sort());
  for (const [p, expected] of db) {
    const node = ours.get(p) as FsNode;
    const got = { id: node.id, type: node.type, size: node.size, mode: node.mode, uid: node.uid, gid: node.gid, nlink: node.nlink };
    const want = { id: String(expected.ino), type: TYPES[expected.type], size: expected.size, mode: expected.mode, uid: expected.uid, gid: expected.gid, nlink: expected.nlink };
    assert.deepEqual(got, want, p);
    for (const t of ['atimeMs', 'mtimeMs', 'ctimeMs', 'birthtimeMs'] as const) assert.ok(Math.abs(node[t] - expected[t]) < 1e-3, `${p} ${t}: ${node[t]} vs ${expected[t]}`);
    if (node.type === 'file') {
      const oracle = createHash('sha256').update(await xfsDbFileBytes(image, expected, geometry)).digest('hex');
      assert.equal(shas.get(p), oracle, `${p} content`);
    }
  }
  return { ours, db, shas };
}

async function extentsOf(image: string, p: string): Promise<FsFileExtent[]> {
  return withFs(image, async (fsys) => {
    let node = await fsys.root();
    for (const name of p.split('/').filter(Boolean)) node = (await fsys.lookup?.(node, name)) as FsNode;
    const out: FsFileExtent[] = [];
    for await (const e of fsys.fileExtents?.(node) ?? []) out.push({ ...e });
    return out;
  });
}

test('the protofile image: every path, type, size, mode, owner, time and content as xfs_db reads it, and as the source tree holds it', async () => {
  const { ours, db, shas } = await compareWithXfsDb(treeImage);
  // The shapes this image must exercise, as xfs_db sees them.
  assert.equal(db.get('/docs')?.format, 'local');
  const leafBlock = 2 ** 35 / 4096;
  const hasBlock = (p: string, from: number): boolean => (db.get(p)?.extents ?? []).some((e) => e.fileBlock >= from && e.fileBlock < from + leafBlock);
  assert.ok(hasBlock('/many', leafBlock) && !hasBlock('/many', 2 * leafBlock), '/many is a leaf directory');
  assert.ok(hasBlock('/wide', 2 * leafBlock) && (db.get('/wide')?.extents ?? []).filter((e) => e.fileBlock >= leafBlock).length > 2, '/wide is a node directory');
  assert.equal([...ours.keys()].filter((p) => p.startsWith('/wide/')).length, 1500);

  const src = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-xfs-tree-'));
  try {
    await writeFsTree(src, { bigFileBytes: BIG });
    await withFs(treeImage, async (fsys) => {
      for (const [p, node] of ours) {
        if (p === '/') continue;
        const st = await fs.lstat(path.join(src, p));
        if (node.type === 'file') {
          assert.ok(st.isFile(), p);
          assert.equal(shas.get(p), createHash('sha256').update(await fs.readFile(path.join(src, p))).digest('hex'), `${p} against the source`);
        } else if (node.type === 'symlink') {
          assert.equal(await fsys.readlink(node), await fs.readlink(path.join(src, p)), p);
        } else {
          assert.ok(st.isDirectory(), p);
        }
        assert.equal(node.mode, st.mode & 0o7777, `${p} mode`);
      }
      assert.equal(await fsys.readlink(ours.get('/links/long-target') as FsNode), FS_TREE_LINKS['long-target']);
      // Reads by range are clipped to the size; past the end they are empty.
      const big = ours.get('/big.bin') as FsNode;
      assert.deepEqual(Buffer.from(await fsys.read(big, BIG - 10, 100)), (await fs.readFile(path.join(src, 'big.bin'))).subarray(BIG - 10));
      assert.equal((await fsys.read(big, BIG + 5, 10)).length, 0);
    });
  } finally {
    await fs.rm(src, { recursive: true, force: true });
  }
  // mkfs.xfs -p writes holes as zeros: sparse.img is one data extent.
  assert.deepEqual(await extentsOf(treeImage, '/sparse.img'), [{ offset: 0, length: 64 * MiB, kind: 'data' }]);
});

test('the fragmented image: B+tree block map, unwritten extents, holes, hard links, devices and bigtime times match xfs_db and the recipe', async () => {
  const { ours, db } = await compareWithXfsDb(fragmentedImage);
  assert.equal(db.get('/btree.bin')?.format, 'btree');
  assert.equal(db.get('/btree.bin')?.extents.length, 4000);
  assert.equal(db.get('/block-dir')?.format, 'extents');
  assert.equal(db.get('/block-dir')?.size, 4096, 'block-dir is a block directory (one directory block)');
  assert.ok(db.get('/unwritten.bin')?.extents.some((e) => e.unwritten));
  await withFs(fragmentedImage, async (fsys) => {
    const get = (p: string): FsNode => ours.get(p) as FsNode;
    const expectedBtree = Buffer.alloc(32_768_000);
    for (let i = 0; i < 8000; i += 2) expectedBtree.write(`${`btree.bin block ${i}`.padEnd(63)}\n`.repeat(64), i * 4096, 'latin1');
    assert.ok(Buffer.from(await fsys.read(get('/btree.bin'), 0, expectedBtree.length)).equals(expectedBtree));
    assert.ok(Buffer.from(await fsys.read(get('/btree.bin'), 4096 * 7 - 3, 10)).equals(expectedBtree.subarray(4096 * 7 - 3, 4096 * 7 + 7)));
    const unwritten = Buffer.alloc(MiB);
    unwritten.fill(0x5a, 256 * 1024, 320 * 1024);
    assert.ok(Buffer.from(await fsys.read(get('/unwritten.bin'), 0, MiB)).equals(unwritten));
    const sparse = Buffer.alloc(10 * MiB);
    sparse.fill(0x11, 0, 65536);
    sparse.fill(0x22, 5 * MiB, 5 * MiB + 65536);
    assert.ok(Buffer.from(await fsys.read(get('/sparse.bin'), 0, 10 * MiB)).equals(sparse));
    assert.equal(get('/hard-link').id, get('/block-dir/entry-number-7').id);
    assert.equal(get('/hard-link').nlink, 2);
    assert.equal(Buffer.from(await fsys.read(get('/hard-link'), 0, 100)).toString(), 'entry 7\n');
    assert.equal(await fsys.readlink(get('/short-link')), 'btree.bin');
    assert.equal(await fsys.readlink(get('/remote-link')), `${'remote/'.repeat(42)}end`);
    assert.deepEqual(get('/char-dev').rdev, { major: 1, minor: 3 });
    assert.deepEqual(get('/block-dev').rdev, { major: 7, minor: 0 });
    assert.equal(get('/fifo').type, 'fifo');
    assert.deepEqual([get('/setuid.sh').mode, get('/setuid.sh').uid, get('/setuid.sh').gid], [0o4755, 1234, 5678]);
    assert.ok(Math.abs(get('/future.txt').mtimeMs - (Date.parse('2100-01-02T03:04:05.123Z') + 0.456789)) < 1e-3);
    assert.equal(get('/past.txt').mtimeMs, Date.parse('1960-06-07T08:09:10.500Z'));
    assert.equal(get('/block-dir').mtimeMs, Date.parse('2020-02-02T02:02:02Z'));
    assert.equal((await fsys.readdir(get('/block-dir'))).length, 40);
  });
  assert.deepEqual(await extentsOf(fragmentedImage, '/sparse.bin'), [
    { offset: 0, length: 65536, kind: 'data' }, { offset: 65536, length: 5 * MiB - 65536, kind: 'zero' },
    { offset: 5 * MiB, length: 65536, kind: 'data' }, { offset: 5 * MiB + 65536, length: 5 * MiB - 65536, kind: 'zero' },
  ]);
  assert.deepEqual(await extentsOf(fragmentedImage, '/unwritten.bin'), [
    { offset: 0, length: 256 * 1024, kind: 'zero' }, { offset: 256 * 1024, length: 65536, kind: 'data' }, { offset: 320 * 1024, length: 704 * 1024, kind: 'zero' },
  ]);
  const btree = await extentsOf(fragmentedImage, '/btree.bin');
  assert.equal(btree.length, 8000);
  assert.deepEqual(btree.slice(0, 2), [{ offset: 0, length: 4096, kind: 'data' }, { offset: 4096, length: 4096, kind: 'zero' }]);
  assert.deepEqual(btree.at(-1), { offset: 7999 * 4096, length: 4096, kind: 'zero' });
});

test('probe recognises XFS and nothing else; open reports the label, uuid and geometry', async () => {
  const ext4 = await buildExt4Disk({ name: 'xfs-probe-gpt', size: 64 * MiB, label: 'gpt', partitionSizeMiB: 32, files: 'small' });
  const zeros = await cachedFixture('xfs-probe-zeros', { size: 1 }, async (tmp) => fs.writeFile(tmp, Buffer.alloc(MiB)));
  for (const [image, expected] of [[treeImage, true], [fragmentedImage, true], [ext4.path, false], [zeros, false]] as const) {
    const device = await RawImage.open(image);
    try {
      assert.equal(await xfsDriver.probe(device), expected, image);
    } finally {
      await device.close();
    }
  }
  await withFs(treeImage, async (fsys) => {
    assert.deepEqual([fsys.type, fsys.label, fsys.size, fsys.blockSize, fsys.caseInsensitive], ['xfs', 'coffer-xfs', 320 * MiB, 4096, false]);
    const uuid = /^UUID = (\S+)$/m.exec(await runTool('xfs_db', ['-r', '-c', 'uuid', treeImage]))?.[1];
    assert.equal(fsys.uuid, uuid);
  });
});

test('a v4 filesystem (no CRCs) is recognised but refused as unsupported', async () => {
  const v4 = await cachedFixture('xfs-v4', { v: 1 }, async (tmp) => {
    await fs.writeFile(tmp, '');
    await fs.truncate(tmp, 320 * MiB);
    await runTool('mkfs.xfs', ['-q', '-f', '-m', 'crc=0', tmp]);
  });
  const device = await RawImage.open(v4);
  try {
    assert.equal(await xfsDriver.probe(device), true);
    await assert.rejects(xfsDriver.open(device), (e: unknown) => isCofferError(e, 'E_FS_UNSUPPORTED'));
  } finally {
    await device.close();
  }
});

test('names that are not UTF-8 stay as distinct as the bytes on disk, and are found again by them', async () => {
  await withFs(await buildByteNamesXfsImage(), async (fsys) => {
    const root = await fsys.root();
    const entries = await fsys.readdir(root);
    const onDisk = entries.map((e) => encodeName(e.name).toString('hex')).sort();
    const expected = [BYTE_NAMES.latin1Acute, BYTE_NAMES.latin1Grave, BYTE_NAMES.utf8, BYTE_NAMES.ffFe, BYTE_NAMES.folder, BYTE_NAMES.link]
      .map((b) => b.toString('hex')).sort();
    assert.deepEqual(onDisk, expected, 'every name encodes back to its bytes: none merged, none replaced by U+FFFD');
    for (const e of entries) assert.equal((await fsys.lookup?.(root, e.name))?.id, e.node?.id, `lookup of ${printableName(e.name)}`);
    const byHex = new Map(entries.map((e) => [encodeName(e.name).toString('hex'), e]));
    const read = async (node: FsNode): Promise<string> => Buffer.from(await fsys.read(node, 0, node.size)).toString('utf8');
    assert.equal(await read(byHex.get(BYTE_NAMES.latin1Acute.toString('hex'))?.node as FsNode), 'latin1 e-acute\n');
    assert.equal(await read(byHex.get(BYTE_NAMES.latin1Grave.toString('hex'))?.node as FsNode), 'latin1 e-grave\n');
    assert.equal(await read(byHex.get(BYTE_NAMES.utf8.toString('hex'))?.node as FsNode), 'utf-8\n');
    assert.equal(await read(byHex.get(BYTE_NAMES.ffFe.toString('hex'))?.node as FsNode), 'ff fe\n');
    const link = byHex.get(BYTE_NAMES.link.toString('hex'))?.node as FsNode;
    assert.deepEqual(encodeName(await fsys.readlink(link)), BYTE_NAMES.latin1Acute, 'the link target keeps its bytes');
    // Found by the decoded name, and by the \xNN spelling a listing prints.
    const acute = entries.find((e) => encodeName(e.name).equals(BYTE_NAMES.latin1Acute))?.name as string;
    assert.equal(printableName(acute), 'caf\\xe9');
    assert.equal(await read((await resolvePath(fsys, `/${acute}`)).node), 'latin1 e-acute\n');
    assert.equal(await read((await resolvePath(fsys, '/caf\\xe8')).node), 'latin1 e-grave\n');
    assert.equal(await read((await resolvePath(fsys, '/café')).node), 'utf-8\n');
    const inside = await resolvePath(fsys, '/d\\xe9j\\xe0/x\\xb5');
    assert.equal(await read(inside.node), 'inside\n');
    assert.deepEqual(encodeName(inside.path), Buffer.concat([Buffer.from('/'), BYTE_NAMES.folder, Buffer.from('/'), BYTE_NAMES.inFolder]));
  });
});
