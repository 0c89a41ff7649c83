/**
 * Damaged primary group descriptors, on real images made by mke2fs: the reader falls back to
 * the backup descriptors (group 1's table, then group 3's …; a meta group's second group,
 * then its last), says so in the
 * filesystem's notice, and reads every file exactly as debugfs does through the same backup
 * (`debugfs -c -s BLOCK -b SIZE`, e2fsck -b's view). When no copy checks, or the root inode
 * itself is gone, the error says what is wrong and where, not "inode 2 is not in use".
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { RawImage } from '../../disk/index.js';
import { isCofferError } from '../../errors/index.js';
import { debugfsTree, requireTools, runTool, seededBytes } from '../../testing/index.js';
import { openFilesystem, resolvePath, walkTree, type Filesystem } from '../index.js';

const MiB = 1024 * 1024;
let work: string;
let src: string;
/** A tree that fills a few groups' worth of metadata: 300 small files (inodes beyond group 0 with -N), a large one, a link. */
let many: string;

before(async () => {
  work = await fsp.mkdtemp(path.join(tmpdir(), 'coffer-ext-gdt-'));
  src = path.join(work, 'src');
  await fsp.mkdir(path.join(src, 'etc'), { recursive: true });
  await fsp.writeFile(path.join(src, 'etc/hostname'), 'web01\n');
  await fsp.writeFile(path.join(src, 'etc/big.bin'), seededBytes(41, 300_000));
  await fsp.symlink('hostname', path.join(src, 'etc/name-link'));
  many = path.join(work, 'many');
  await fsp.mkdir(path.join(many, 'files'), { recursive: true });
  for (let i = 0; i < 300; i++) await fsp.writeFile(path.join(many, 'files', `f${i}`), `file ${i}\n`);
  await fsp.writeFile(path.join(many, 'big.bin'), seededBytes(42, 200_000));
});
after(() => fsp.rm(work, { recursive: true, force: true }));

/** An image of `sizeMiB` made by mke2fs with `args` from `tree`, then `zeroed` byte ranges overwritten. */
async function image(name: string, sizeMiB: number, args: string[], tree: string, damage: { at: number; bytes: Buffer }[]): Promise<string> {
  const file = path.join(work, `${name}.img`);
  await fsp.writeFile(file, '');
  await fsp.truncate(file, sizeMiB * MiB);
  await runTool('mke2fs', ['-q', '-F', ...args, '-d', tree, file]);
  const handle = await fsp.open(file, 'r+');
  try {
    for (const { at, bytes } of damage) await handle.write(bytes, 0, bytes.length, at);
  } finally {
    await handle.close();
  }
  return file;
}

const zeros = (at: number, length: number): { at: number; bytes: Buffer } => ({ at, bytes: Buffer.alloc(length) });

async function withFs<T>(file: string, body: (fs: Filesystem) => Promise<T>): Promise<T> {
  const device = await RawImage.open(file);
  try {
    const fs = await openFilesystem(device);
    assert.ok(fs !== undefined, 'a filesystem');
    return await body(fs);
  } finally {
    await device.close();
  }
}

async function openError(file: string): Promise<Error> {
  const device = await RawImage.open(file);
  try {
    const outcome = await openFilesystem(device).then(() => undefined, (error: unknown) => error);
    assert.ok(outcome instanceof Error, 'opening fails');
    return outcome;
  } finally {
    await device.close();
  }
}

/** Every node with its type, inode, size, content hash and link target, as this reader sees it. */
async function readerTree(fs: Filesystem): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const item of walkTree(fs, await fs.root())) {
    if (item.kind === 'error') assert.fail(`/${item.path.join('/')}: ${item.error.message}`);
    if (item.kind === 'leave' || item.path.length === 0) continue;
    const { node } = item;
    let detail = '';
    if (node.type === 'file') detail = createHash('sha256').update(await fs.read(node, 0, node.size)).digest('hex');
    if (node.type === 'symlink') detail = await fs.readlink(node);
    out.set(item.path.join('/'), `${node.type} ${node.id} ${node.type === 'directory' ? '' : node.size} ${detail}`);
  }
  return out;
}

/** The same, from debugfs reading through the backup superblock at `superblock` (or the primary, without one). */
async function oracleTree(file: string, superblock?: number, blockSize?: number): Promise<Map<string, string>> {
  const oracle = await debugfsTree(file, superblock === undefined ? undefined : { superblock, blockSize: blockSize as number });
  try {
    const out = new Map<string, string>();
    for (const [rel, n] of oracle.nodes) {
      if (rel === '') continue;
      const detail = n.type === 'file' ? n.sha256 : n.type === 'symlink' ? n.target : '';
      out.set(rel, `${n.type} ${n.inode} ${n.type === 'directory' ? '' : n.size} ${detail}`);
    }
    return out;
  } finally {
    await oracle.cleanup();
  }
}

const CASES = [
  {
    name: 'ext4, 1 KiB blocks, metadata_csum: descriptor block 2 zeroed',
    sizeMiB: 16, args: ['-t', 'ext4', '-b', '1024'], tree: 'src',
    damage: [zeros(2 * 1024, 1024)], backupSuperblock: 8193, blockSize: 1024,
    notice: /^the primary group descriptors are damaged \(group 0: all zeros\); groups 0-1 read through the backup copy in group 1 \(every such group taken as initialised\)$/,
  },
  {
    name: 'ext4, 4 KiB blocks, metadata_csum: descriptor block 1 zeroed',
    sizeMiB: 160, args: ['-t', 'ext4', '-b', '4096'], tree: 'src',
    damage: [zeros(4096, 4096)], backupSuperblock: 32768, blockSize: 4096,
    notice: /^the primary group descriptors are damaged \(group 0: all zeros\); groups 0-1 read through the backup copy in group 1/,
  },
  {
    name: 'ext3, 4 KiB blocks, no checksums: descriptor block 1 zeroed',
    sizeMiB: 160, args: ['-t', 'ext3', '-b', '4096'], tree: 'src',
    damage: [zeros(4096, 4096)], backupSuperblock: 32768, blockSize: 4096,
    notice: /^the primary group descriptors are damaged \(group 0: all zeros\); groups 0-1 read through the backup copy in group 1/,
  },
  {
    name: 'ext2, 1 KiB blocks, no checksums: descriptor block 2 zeroed',
    sizeMiB: 16, args: ['-t', 'ext2', '-b', '1024'], tree: 'src',
    damage: [zeros(2 * 1024, 1024)], backupSuperblock: 8193, blockSize: 1024,
    notice: /^the primary group descriptors are damaged \(group 0: all zeros\); groups 0-1 read through the backup copy in group 1/,
  },
  {
    // bg_free_blocks_count_lo (0x0C) changed: the locations still look right, only the checksum tells.
    name: 'ext4, metadata_csum: one byte of group 0\'s descriptor changed (a free count)',
    sizeMiB: 16, args: ['-t', 'ext4', '-b', '1024'], tree: 'src',
    damage: [{ at: 2 * 1024 + 0x0c, bytes: Buffer.from([0x07]) }], backupSuperblock: 8193, blockSize: 1024,
    notice: /^the primary group descriptors are damaged \(group 0: checksum 0x[0-9a-f]{4} instead of 0x[0-9a-f]{4}\); group 0 read through the backup copy in group 1/,
  },
  {
    name: 'ext4, uninit_bg (crc16): one byte of group 0\'s descriptor changed (a free count)',
    sizeMiB: 16, args: ['-t', 'ext4', '-b', '1024', '-O', '^metadata_csum,uninit_bg'], tree: 'src',
    damage: [{ at: 2 * 1024 + 0x0c, bytes: Buffer.from([0x07]) }], backupSuperblock: 8193, blockSize: 1024,
    notice: /^the primary group descriptors are damaged \(group 0: checksum 0x[0-9a-f]{4} instead of 0x[0-9a-f]{4}\); group 0 read through the backup copy in group 1/,
  },
  {
    // 1024-block groups, 16 inodes each: the 300 files' inodes reach groups 16-25, whose
    // descriptors are meta group 1's block at 16385 (group 16), copied in group 17.
    name: 'ext4 meta_bg: meta group 0\'s (block 2) and meta group 1\'s (block 16385) descriptor blocks zeroed',
    sizeMiB: 64, args: ['-t', 'ext4', '-b', '1024', '-g', '1024', '-N', '1024', '-O', 'meta_bg,^resize_inode,64bit'], tree: 'many',
    damage: [zeros(2 * 1024, 1024), zeros(16385 * 1024, 1024)], backupSuperblock: 1025, blockSize: 1024,
    notice: /^the primary group descriptors are damaged \(group 0: all zeros\); groups 0-31 read through backup copies in groups 1, 17/,
  },
  {
    // s_first_data_block is 0, yet the descriptors are at block 2; group 1 starts at 131072.
    name: 'ext4 bigalloc, 1 KiB blocks: descriptor block 2 zeroed',
    sizeMiB: 160, args: ['-t', 'ext4', '-b', '1024', '-C', '16384', '-O', 'bigalloc'], tree: 'src',
    damage: [zeros(2 * 1024, 1024)], backupSuperblock: 131072, blockSize: 1024,
    notice: /^the primary group descriptors are damaged \(group 0: all zeros\); groups 0-1 read through the backup copy in group 1/,
  },
];

for (const c of CASES) {
  test(`${c.name}: read through the backup descriptors, with a notice, as debugfs reads it`, async () => {
    await requireTools('mke2fs', 'debugfs');
    const file = await image(c.name.replace(/[^a-z0-9]+/gi, '-'), c.sizeMiB, c.args, c.tree === 'src' ? src : many, c.damage);
    await withFs(file, async (fs) => {
      assert.match(fs.notice ?? '(no notice)', c.notice);
      const mine = await readerTree(fs);
      assert.deepEqual(mine, await oracleTree(file, c.backupSuperblock, c.blockSize));
      if (c.tree === 'src') {
        const { node } = await resolvePath(fs, '/etc/hostname');
        assert.equal(Buffer.from(await fs.read(node, 0, node.size)).toString(), 'web01\n');
        const big = await resolvePath(fs, '/etc/big.bin');
        assert.deepEqual(Buffer.from(await fs.read(big.node, 0, big.node.size)), seededBytes(41, 300_000));
      } else {
        const { node } = await resolvePath(fs, '/files/f299');
        assert.equal(Buffer.from(await fs.read(node, 0, node.size)).toString(), 'file 299\n');
        const inodes = [...mine.values()].map((v) => Number(v.split(' ')[1]));
        assert.ok(Math.max(...inodes) > 16 * 16, 'some inodes are in meta group 1 (groups 16-31)');
      }
    });
  });
}

test('superblock and descriptors both zeroed (the first 3 KiB after the boot block): both backups, both named', async () => {
  await requireTools('mke2fs', 'debugfs');
  const file = await image('sb-and-gdt', 16, ['-t', 'ext4', '-b', '1024'], src, [zeros(1024, 3 * 1024)]);
  await withFs(file, async (fs) => {
    assert.match(fs.notice ?? '', /^the primary superblock is damaged \(no ext superblock magic\): read through the backup superblock at block 8193 .*; the primary group descriptors are damaged \(group 0: all zeros\); groups 0-1 read through the backup copy in group 1/);
    const { node } = await resolvePath(fs, '/etc/hostname');
    assert.equal(Buffer.from(await fs.read(node, 0, node.size)).toString(), 'web01\n');
  });
});

test('group 1\'s descriptor damaged in both copies: the filesystem opens, the notice names the group that does not read', async () => {
  await requireTools('mke2fs');
  // 32-byte descriptors: group 1's is bytes 32-63 of block 2 and of its copy at block 8194.
  const file = await image('group1-lost', 16, ['-t', 'ext2', '-b', '1024'], src, [zeros(2 * 1024 + 32, 32), zeros(8194 * 1024 + 32, 32)]);
  await withFs(file, async (fs) => {
    assert.match(fs.notice ?? '', /^the primary group descriptors are damaged \(group 1: all zeros\); group 1 unreadable \(the backup copies are damaged too, or missing\): files there do not read$/);
    const { node } = await resolvePath(fs, '/etc/hostname');
    assert.equal(Buffer.from(await fs.read(node, 0, node.size)).toString(), 'web01\n');
  });
});

test('both copies of the descriptors zeroed: E_FS_CORRUPT naming the descriptors, not "inode 2 is not in use"', async () => {
  await requireTools('mke2fs');
  const file = await image('gdt-both', 16, ['-t', 'ext2', '-b', '1024'], src, [zeros(2 * 1024, 1024), zeros(8194 * 1024, 1024)]);
  const error = await openError(file);
  assert.ok(isCofferError(error, 'E_FS_CORRUPT'), String(error));
  assert.equal(error.message, 'ext2: the root directory (inode 2) does not read: the descriptor of group 0 at block 2 is damaged (all zeros) and its backup in group 1 at block 8194 is damaged too (all zeros)');
});

// 64 MiB of 1 KiB blocks: 8 groups of 8192 blocks, copies of the superblock and the table in
// groups 1, 3, 5 and 7 (sparse_super), each table in the block after its superblock.
const copyInGroup = (group: number): number => group * 8192 + 1;

test('the descriptors damaged in group 1\'s copy too: read through group 3\'s, as debugfs reads it', async () => {
  await requireTools('mke2fs', 'debugfs');
  const file = await image('gdt-group3', 64, ['-t', 'ext4', '-b', '1024'], src, [zeros(2 * 1024, 1024), zeros((copyInGroup(1) + 1) * 1024, 1024)]);
  await withFs(file, async (fs) => {
    assert.match(fs.notice ?? '', /^the primary group descriptors are damaged \(group 0: all zeros\); groups 0-7 read through the backup copy in group 3 \(every such group taken as initialised\)$/);
    assert.deepEqual(await readerTree(fs), await oracleTree(file, copyInGroup(3), 1024));
    const big = await resolvePath(fs, '/etc/big.bin');
    assert.deepEqual(Buffer.from(await fs.read(big.node, 0, big.node.size)), seededBytes(41, 300_000));
  });
});

test('the superblock and the descriptors lost with group 1\'s copies: group 3\'s superblock and table', async () => {
  await requireTools('mke2fs', 'debugfs');
  const file = await image('sb-group3', 64, ['-t', 'ext4', '-b', '1024'], src, [zeros(1024, 2 * 1024), zeros(copyInGroup(1) * 1024, 2 * 1024)]);
  await withFs(file, async (fs) => {
    assert.match(fs.notice ?? '', /^the primary superblock is damaged \(no ext superblock magic\): read through the backup superblock at block 24577 \(as e2fsck -b 24577 would\); the primary group descriptors are damaged \(group 0: all zeros\); groups 0-7 read through the backup copy in group 3/);
    assert.deepEqual(await readerTree(fs), await oracleTree(file, copyInGroup(3), 1024));
  });
});

test('meta_bg: a meta group\'s descriptor block damaged in its second group\'s copy too: read through its last group\'s', async () => {
  await requireTools('mke2fs', 'debugfs');
  // As the meta_bg case above: meta group 1 is groups 16-31 (64-byte descriptors, 16 a block),
  // its block at 16385 (group 16, after its superblock copy), copied in group 17 (block 17409,
  // after its superblock copy) and in group 31 (block 31745, no superblock there).
  const args = ['-t', 'ext4', '-b', '1024', '-g', '1024', '-N', '1024', '-O', 'meta_bg,^resize_inode,64bit'];
  const clean = await image('meta-bg-clean', 64, args, many, []);
  const file = await image('meta-bg-last', 64, args, many, [zeros(16385 * 1024, 1024), zeros(17409 * 1024, 1024)]);
  await withFs(file, async (fs) => {
    assert.match(fs.notice ?? '', /^the primary group descriptors are damaged \(group 16: all zeros\); groups 16-31 read through the backup copy in group 31 /);
    assert.deepEqual(await readerTree(fs), await oracleTree(clean));
    const { node } = await resolvePath(fs, '/files/f299');
    assert.equal(Buffer.from(await fs.read(node, 0, node.size)).toString(), 'file 299\n');
  });
});

test('every copy of the descriptors damaged: the error names each copy tried', async () => {
  await requireTools('mke2fs');
  const file = await image('gdt-all', 64, ['-t', 'ext4', '-b', '1024'], src, [2, copyInGroup(1) + 1, copyInGroup(3) + 1, copyInGroup(5) + 1, copyInGroup(7) + 1].map((block) => zeros(block * 1024, 1024)));
  const error = await openError(file);
  assert.ok(isCofferError(error, 'E_FS_CORRUPT'), String(error));
  assert.equal(error.message, 'ext4: the root directory (inode 2) does not read: the descriptor of group 0 at block 2 is damaged (all zeros) and its 4 backups are damaged too: in group 1 at block 8194 (all zeros), in group 3 at block 24578 (all zeros), in group 5 at block 40962 (all zeros), in group 7 at block 57346 (all zeros)');
});

test('a filesystem of one group has no backup descriptors: the error says so', async () => {
  await requireTools('mke2fs');
  const file = await image('gdt-single', 6, ['-t', 'ext4', '-b', '1024'], src, [zeros(2 * 1024, 1024)]);
  const error = await openError(file);
  assert.ok(isCofferError(error, 'E_FS_CORRUPT'), String(error));
  assert.equal(error.message, 'ext4: the root directory (inode 2) does not read: the descriptor of group 0 at block 2 is damaged (all zeros) and there is no backup copy');
});

test('a root inode zeroed in its inode table: the error says where the record is', async () => {
  await requireTools('mke2fs', 'debugfs');
  const file = await image('root-zeroed', 16, ['-t', 'ext2', '-b', '1024', '-I', '128'], src, []);
  const stat = await runTool('debugfs', ['-R', 'imap <2>', file]);
  const located = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(stat);
  assert.ok(located, stat);
  const [block, offset] = [Number(located[1]), parseInt(located[2] as string, 16)];
  const handle = await fsp.open(file, 'r+');
  await handle.write(Buffer.alloc(128), 0, 128, block * 1024 + offset);
  await handle.close();
  const error = await openError(file);
  assert.ok(isCofferError(error, 'E_FS_CORRUPT'), String(error));
  assert.equal(error.message, `ext2: the root directory (inode 2, at byte ${offset} of block ${block} in the inode table of group 0) does not read: inode 2 is not in use`);
});
