/**
 * The ext reader on a crafted image (buildHostileExtImage) and on damaged or foreign
 * superblocks: hostile names come back unchanged, damage is reported per entry, loops are
 * visible by inode number, nothing hangs, and probe says no to what is not ext.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawImage } from '../../disk/index.js';
import { isCofferError } from '../../errors/index.js';
import { buildExt4Disk, buildExtImage, buildHostileExtImage, deriveDisk, requireTools } from '../../testing/index.js';
import type { Filesystem, FsNode } from '../index.js';
import { extDriver } from './index.js';

async function withFs<T>(image: string, body: (fs: Filesystem) => Promise<T>): Promise<T> {
  const device = await RawImage.open(image);
  try {
    return await body(await extDriver.open(device));
  } finally {
    await device.close();
  }
}

test('hostile ext4: names as stored, errors per entry, a loop seen by inode number', async () => {
  await requireTools('mke2fs', 'debugfs');
  await withFs(await buildHostileExtImage(), async (fs) => {
    const root = await fs.root();
    const entries = await fs.readdir(root);
    const byName = new Map(entries.map((e) => [e.name, e]));
    assert.deepEqual([...byName.keys()].sort(), ['..', 'a', 'bad-extent.bin', 'lost+found', 'oor', 'slash/name']);
    assert.equal(new TextDecoder().decode(await fs.read(byName.get('slash/name')!.node!, 0, 100)), 'abcdefgh\n');
    assert.equal(new TextDecoder().decode(await fs.read(byName.get('..')!.node!, 0, 100)), 'dd\n');
    assert.equal(byName.get('..')!.node!.type, 'file');
    const oor = byName.get('oor')!;
    assert.equal(oor.node, undefined);
    assert.ok(isCofferError(oor.error, 'E_FS_CORRUPT'), String(oor.error));
    await assert.rejects(fs.read(byName.get('bad-extent.bin')!.node!, 0, 100), (e) => isCofferError(e, 'E_FS_CORRUPT'));
    await assert.rejects(async () => { for await (const _ of fs.fileExtents!(byName.get('bad-extent.bin')!.node!)); }, (e) => isCofferError(e, 'E_FS_CORRUPT'));

    const a = byName.get('a')!.node!;
    const b = (await fs.lookup!(a, 'b'))!;
    const escape = (await fs.lookup!(b, 'escape'))!;
    assert.equal(await fs.readlink(escape), '../../../../etc/passwd');
    const loop = (await fs.lookup!(b, 'loop'))!;
    assert.equal(loop.type, 'directory');
    assert.equal(loop.id, a.id, 'the loop entry is the ancestor, by inode number');
    assert.equal(new TextDecoder().decode(await fs.read((await fs.lookup!(b, 'victim.txt'))!, 0, 10)), 'hi\n');

    // A walk that tracks inode numbers terminates and sees every name.
    const seen = new Set<string>();
    const names: string[] = [];
    const walk = async (dir: FsNode, path: string): Promise<void> => {
      if (seen.has(dir.id)) return;
      seen.add(dir.id);
      for (const e of await fs.readdir(dir)) {
        names.push(`${path}/${e.name}`);
        if (e.node?.type === 'directory') await walk(e.node, `${path}/${e.name}`);
      }
    };
    await walk(root, '');
    assert.ok(names.includes('/a/b/loop') && names.includes('/a/b/escape'), names.join(' '));
  });
});

test('probe: ext images yes; zeros, a partitioned disk and a damaged geometry no', async () => {
  await requireTools('sfdisk', 'mke2fs');
  const ext = await buildExtImage({ sizeMiB: 96, bigFileBytes: 3_000_000, variant: 'ext3' });
  const disk = await buildExt4Disk({ name: 'ext-probe-gpt', size: 48 << 20, label: 'gpt', partitionSizeMiB: 32, files: 'small' });
  const zeros = await deriveDisk(ext, 'ext-probe-zeros', [{ offset: 0, bytes: Buffer.alloc(64 * 1024) }]);
  // s_inodes_per_group + 1: the inode count no longer fills the groups.
  const device = await RawImage.open(ext);
  const sb = Buffer.from(await device.read(1024, 1024));
  await device.close();
  const badGeometry = Buffer.alloc(4);
  badGeometry.writeUInt32LE(sb.readUInt32LE(0x28) + 1);
  const damaged = await deriveDisk(ext, 'ext-probe-geometry', [{ offset: 1024 + 0x28, bytes: badGeometry }]);
  const cases: [string, boolean][] = [[ext, true], [disk.path, false], [zeros, false], [damaged, false]];
  for (const [path, expected] of cases) {
    const dev = await RawImage.open(path);
    try {
      assert.equal(await extDriver.probe(dev), expected, path);
      if (!expected) await assert.rejects(extDriver.open(dev), (e) => isCofferError(e, 'E_FS_CORRUPT'));
    } finally {
      await dev.close();
    }
  }
});

test('open refuses an INCOMPAT feature it cannot read, naming it', async () => {
  const ext = await buildExtImage({ sizeMiB: 96, bigFileBytes: 3_000_000, variant: 'ext4' });
  const device = await RawImage.open(ext);
  const incompat = Buffer.from(await device.read(1024 + 0x60, 4));
  await device.close();
  incompat.writeUInt32LE(incompat.readUInt32LE(0) | 0x1000); // dirdata (Lustre's extra data in directory entries)
  const dirdata = await deriveDisk(ext, 'ext-dirdata-flag', [{ offset: 1024 + 0x60, bytes: incompat }]);
  const dev = await RawImage.open(dirdata);
  try {
    assert.equal(await extDriver.probe(dev), true);
    await assert.rejects(extDriver.open(dev), (e) => isCofferError(e, 'E_FS_UNSUPPORTED') && /feature dirdata is not supported/.test(e.message));
  } finally {
    await dev.close();
  }
});
