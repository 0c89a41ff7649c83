/**
 * ext4 extended attributes and POSIX ACLs against independent readers: the image mke2fs
 * made from a tree (testing/xattr-tree.ts) reads, for every entry, the attributes getfattr
 * reads on that tree (ACLs in Linux's xattr form, though the disk holds ext4's own), under
 * the names debugfs lists, in-inode ones and those of the attribute block alike.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { RawImage } from '../../disk/index.js';
import { decodeName } from '../../names/index.js';
import { buildXattrsExtImage, requireTools, runTool, seededBytes, tempFolders, writeXattrTree } from '../../testing/index.js';
import { openFilesystem, resolvePath, type Filesystem } from '../index.js';

const run = promisify(execFile);
const tempFolder = tempFolders();
const PATHS = ['colour.txt', 'shared', 'shared/inner.txt', 'shared/plain.txt', 'big-attrs.txt', 'plain.txt', 'link'];
let image: string;
let source: string;
let device: RawImage;
let fs: Filesystem;

before(async () => {
  await requireTools('mke2fs', 'debugfs', 'setfattr', 'getfattr', 'setfacl');
  source = await tempFolder('coffer-ext-xattrs');
  await writeXattrTree(source);
  image = await buildXattrsExtImage();
  device = await RawImage.open(image);
  const opened = await openFilesystem(device);
  assert.ok(opened !== undefined);
  fs = opened;
});
after(() => device?.close());

/** `getfattr -h -d -m - -e hex` of one path: name → value in hex (names as the reader decodes bytes). */
async function getfattrHex(file: string): Promise<Map<string, string>> {
  const { stdout } = await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', file], { encoding: 'buffer' });
  const out = new Map<string, string>();
  for (const line of stdout.toString('latin1').split('\n')) {
    const match = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (match) out.set(decodeName(Buffer.from(match[1] as string, 'latin1')), match[2] as string);
  }
  return out;
}

/** The attribute names debugfs's `ea_list` gives for a path (ASCII names only: it escapes the rest). */
async function debugfsNames(file: string): Promise<string[]> {
  const listing = await runTool('debugfs', ['-R', `ea_list /${file}`, image]);
  return [...listing.matchAll(/^ {2}(\S+) \(\d+\)/gm)].map((m) => m[1] as string);
}

async function readerHex(file: string): Promise<Map<string, string>> {
  const { node } = await resolvePath(fs, `/${file}`);
  assert.ok(fs.xattrs, 'ext reads extended attributes');
  return new Map((await fs.xattrs(node)).map((x) => [x.name, Buffer.from(x.value).toString('hex')]));
}

test('every entry has the attributes getfattr reads on the source tree, ACLs in the xattr form', async () => {
  for (const file of PATHS) {
    const expected = await getfattrHex(path.join(source, file));
    if (file === 'plain.txt') expected.set('system.richacl', Buffer.from('xyz').toString('hex'));
    const got = await readerHex(file);
    assert.deepEqual(new Map([...got].sort()), new Map([...expected].sort()), file);
  }
  const colour = await readerHex('colour.txt');
  assert.ok(colour.has(decodeName(Buffer.from('user.caf\xe9', 'latin1'))), 'a name that is not UTF-8 keeps its byte');
  assert.equal((await readerHex('shared')).size, 2, 'access and default ACL');
});

test('the names are those debugfs lists, in its order: in-inode first, then the attribute block', async () => {
  for (const file of PATHS) {
    const names = [...(await readerHex(file)).keys()].filter((n) => /^[\x20-\x7e]+$/.test(n));
    assert.deepEqual(names, (await debugfsNames(file)).filter((n) => /^[\x20-\x7e]+$/.test(n) && !n.includes('\\')), file);
  }
  const stat = await runTool('debugfs', ['-R', 'stat /big-attrs.txt', image]);
  assert.match(stat, /File ACL: [1-9]/, 'big-attrs.txt has an attribute block');
});

test('a damaged attribute block is E_FS_CORRUPT naming the inode (metadata_csum), never a crash', async () => {
  const copy = path.join(await tempFolder('coffer-ext-xattrs-damaged'), 'damaged.img');
  await fsp.copyFile(image, copy);
  const acl = Number(/File ACL: (\d+)/.exec(await runTool('debugfs', ['-R', 'stat /big-attrs.txt', copy]))?.[1]);
  const inode = Number(/^Inode: (\d+)/m.exec(await runTool('debugfs', ['-R', 'stat /big-attrs.txt', copy]))?.[1]);
  const handle = await fsp.open(copy, 'r+');
  try {
    // The first entry's e_value_size (block byte 32 + 8) made huge: its value runs past the block.
    await handle.write(Buffer.from([0xff, 0xff, 0, 0]), 0, 4, acl * 4096 + 32 + 8);
  } finally {
    await handle.close();
  }
  const damaged = await RawImage.open(copy);
  try {
    const dfs = await openFilesystem(damaged);
    assert.ok(dfs !== undefined);
    const { node } = await resolvePath(dfs, '/big-attrs.txt');
    await assert.rejects(() => (dfs.xattrs as NonNullable<Filesystem['xattrs']>)(node), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'E_FS_CORRUPT');
      assert.match(error.message, new RegExp(`inode ${inode}: extended attribute block ${acl}: checksum`));
      return true;
    });
    assert.equal(Buffer.from(await dfs.read(node, 0, 100)).toString(), 'big\n', 'the content still reads');
  } finally {
    await damaged.close();
  }
});

test('a value kept in its own inode (ea_inode) reads as debugfs ea_get gives it', async () => {
  const work = await tempFolder('coffer-ext-ea-inode');
  const tree = path.join(work, 'tree');
  await fsp.mkdir(tree);
  await fsp.writeFile(path.join(tree, 'huge-attr.txt'), 'x\n');
  const value = seededBytes(4090, 4090); // too big for a 4 KiB attribute block with its header
  await fsp.writeFile(path.join(work, 'value'), value);
  const ea = path.join(work, 'ea-inode.img');
  await fsp.writeFile(ea, '');
  await fsp.truncate(ea, 8 * 1024 * 1024);
  await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-O', 'ea_inode', '-d', tree, ea]);
  await runTool('debugfs', ['-w', '-R', `ea_set -f ${path.join(work, 'value')} /huge-attr.txt user.huge`, ea]);
  assert.match(await runTool('debugfs', ['-R', 'stat /huge-attr.txt', ea]), /File ACL: 0\b/, 'no attribute block: the value is in an inode');
  await runTool('debugfs', ['-R', `ea_get -f ${path.join(work, 'oracle')} /huge-attr.txt user.huge`, ea]);
  assert.deepEqual(await fsp.readFile(path.join(work, 'oracle')), value, 'debugfs reads the value back');
  const eaDevice = await RawImage.open(ea);
  try {
    const efs = await openFilesystem(eaDevice);
    assert.ok(efs?.xattrs !== undefined);
    const { node } = await resolvePath(efs, '/huge-attr.txt');
    const got = await efs.xattrs(node);
    assert.deepEqual(got.map((x) => x.name), ['user.huge']);
    assert.deepEqual(Buffer.from(got[0]?.value ?? []), value);
  } finally {
    await eaDevice.close();
  }
});
