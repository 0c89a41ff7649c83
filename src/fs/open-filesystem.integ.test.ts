/**
 * A volume whose superblock is damaged but still carries its filesystem's signature is
 * reported as that filesystem, damaged (E_FS_CORRUPT, with the reader's reason), not as a
 * volume that holds no filesystem Coffer reads. Real filesystems made by mke2fs, mkfs.xfs,
 * mkntfs and mkfs.fat, each with one superblock field broken.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { RawImage } from '../disk/index.js';
import { isCofferError } from '../errors/index.js';
import { requireTools, runTool } from '../testing/index.js';
import { openFilesystem, resolvePath } from './index.js';

let work: string;
before(async () => {
  work = await fsp.mkdtemp(path.join(tmpdir(), 'coffer-open-fs-'));
});
after(() => fsp.rm(work, { recursive: true, force: true }));

const MiB = 1024 * 1024;

/** A fresh image of `sizeMiB` made by `make`, with `bytes` written at `offset`. */
async function brokenImage(name: string, sizeMiB: number, make: (file: string) => Promise<unknown>, offset: number, bytes: number[]): Promise<string> {
  const file = path.join(work, `${name}.img`);
  await fsp.writeFile(file, '');
  await fsp.truncate(file, sizeMiB * MiB);
  await make(file);
  const handle = await fsp.open(file, 'r+');
  try {
    await handle.write(Buffer.from(bytes), 0, bytes.length, offset);
  } finally {
    await handle.close();
  }
  return file;
}

async function openError(file: string): Promise<unknown> {
  const device = await RawImage.open(file);
  try {
    return await openFilesystem(device).then(() => undefined, (error: unknown) => error);
  } finally {
    await device.close();
  }
}

const CASES = [
  // s_log_block_size (superblock at 1024, field at 0x18) = 9: a block size beyond 64 KiB.
  { name: 'ext4', tool: 'mke2fs', sizeMiB: 8, make: (f: string) => runTool('mke2fs', ['-q', '-F', '-t', 'ext4', f]), offset: 1024 + 0x18, bytes: [9, 0, 0, 0], reason: /^ext: the volume has its signature but does not read \(damaged\): block size/ },
  // sb_blocksize (offset 4, big-endian) = 3.
  { name: 'xfs', tool: 'mkfs.xfs', sizeMiB: 300, make: (f: string) => runTool('mkfs.xfs', ['-q', '-f', f]), offset: 4, bytes: [0, 0, 0, 3], reason: /^xfs: the volume has its signature but does not read \(damaged\): / },
  // bytes per sector (0x0b) = 100.
  { name: 'ntfs', tool: 'mkntfs', sizeMiB: 8, make: (f: string) => runTool('mkntfs', ['-F', '-Q', '-q', f]), offset: 0x0b, bytes: [100, 0], reason: /^ntfs: the volume has its signature but does not read \(damaged\): boot sector: bad sector size 100/ },
  // bytes per sector (0x0b) = 100.
  { name: 'fat', tool: 'mkfs.fat', sizeMiB: 8, make: (f: string) => runTool('mkfs.fat', [f]), offset: 0x0b, bytes: [100, 0], reason: /^fat: the volume has its signature but does not read \(damaged\): / },
];

for (const c of CASES) {
  test(`${c.name} with a broken superblock: damaged, with the reason, not "no filesystem"`, async () => {
    await requireTools(c.tool);
    const error = await openError(await brokenImage(c.name, c.sizeMiB, c.make, c.offset, c.bytes));
    assert.ok(isCofferError(error, 'E_FS_CORRUPT'), `${c.name}: ${String(error)}`);
    assert.match(error.message, c.reason);
  });
}

test('a volume of zeros still holds no filesystem (undefined, no error)', async () => {
  const file = path.join(work, 'zeros.img');
  await fsp.writeFile(file, Buffer.alloc(MiB));
  const device = await RawImage.open(file);
  try {
    assert.equal(await openFilesystem(device), undefined);
  } finally {
    await device.close();
  }
});

test('ext with its primary superblock wiped is read through the backup superblock of group 1, and says so', async () => {
  await requireTools('mke2fs', 'debugfs');
  const src = path.join(work, 'ext-src');
  await fsp.mkdir(path.join(src, 'etc'), { recursive: true });
  await fsp.writeFile(path.join(src, 'etc/hostname'), 'web01\n');
  // 1 KiB blocks: 8192 per group, so 16 MiB has a group 1 with its backup at block 8193.
  const file = await brokenImage('ext-backup-sb', 16, (f) => runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', '-d', src, f]), 1024, [...Buffer.alloc(1024)]);
  const device = await RawImage.open(file);
  try {
    const fs = await openFilesystem(device);
    assert.ok(fs !== undefined, 'opened');
    assert.equal(fs.type, 'ext4');
    assert.match(fs.notice ?? '', /primary superblock is damaged .*backup superblock at block 8193/);
    const { node } = await resolvePath(fs, '/etc/hostname');
    assert.equal(Buffer.from(await fs.read(node, 0, node.size)).toString(), 'web01\n');
  } finally {
    await device.close();
  }
});
