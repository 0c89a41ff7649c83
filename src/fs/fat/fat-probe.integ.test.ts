/**
 * `fatDriver.probe` says no to what is not FAT: an ext4 volume, a GPT or MBR disk holding a
 * FAT partition (the disk, not the partition), NTFS (whose boot sector looks like a BPB),
 * zeros; and yes to the FAT partition itself, found at its offset in the disk.
 */
import assert from 'node:assert/strict';
import { truncate, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { SliceDevice } from '../../blockdev/index.js';
import { RawImage } from '../../disk/index.js';
import { fatDriver } from './index.js';
import { buildExt4Disk, buildFatImage, cachedFixture, requireTools, runTool } from '../../testing/index.js';

const MiB = 1024 * 1024;

async function probe(path: string, slice?: { offset: number; size: number }): Promise<boolean> {
  const image = await RawImage.open(path);
  try {
    return await fatDriver.probe(slice ? new SliceDevice(image, slice.offset, slice.size) : image);
  } finally {
    await image.close();
  }
}

test('probe: no for ext4, NTFS, zeros and partitioned disks; yes for a FAT partition in a disk', async () => {
  await requireTools('sfdisk', 'mke2fs', 'mkntfs', 'mformat', 'fsck.fat');
  const ext4 = await buildExt4Disk({ name: 'fat-probe-ext4', size: 24 * MiB, label: 'gpt', partitionSizeMiB: 16, files: 'small' });
  assert.equal(await probe(ext4.path), false, 'a GPT disk');
  assert.equal(await probe(ext4.path, { offset: ext4.partitions[0]!.start, size: ext4.partitions[0]!.size }), false, 'ext4');

  const ntfs = await cachedFixture('fat-probe-ntfs', { recipe: 1 }, async (tmp) => {
    await writeFile(tmp, '');
    await truncate(tmp, 16 * MiB);
    await runTool('mkntfs', ['-F', '-Q', '-q', '-L', 'NTFS', '-s', '512', tmp]);
  });
  assert.equal(await probe(ntfs), false, 'NTFS');

  const zeros = await cachedFixture('fat-probe-zeros', { recipe: 1 }, async (tmp) => {
    await writeFile(tmp, '');
    await truncate(tmp, MiB);
  });
  assert.equal(await probe(zeros), false, 'zeros');

  const fat = await buildFatImage({ sizeMiB: 4, fatBits: 12, label: 'FLOPPY' });
  const disk = await cachedFixture('fat-probe-mbr', { recipe: 1 }, async (tmp) => {
    await writeFile(tmp, '');
    await truncate(tmp, 6 * MiB);
    await runTool('sfdisk', ['-q', tmp], 'label: dos\nlabel-id: 0x0fa70fa7\nstart=2048, size=8192, type=1\n');
    await runTool('dd', [`if=${fat}`, `of=${tmp}`, 'bs=1M', `seek=${MiB}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
  });
  assert.equal(await probe(disk), false, 'an MBR disk');
  assert.equal(await probe(disk, { offset: MiB, size: 4 * MiB }), true, 'its FAT partition');
  assert.equal(await probe(disk, { offset: MiB, size: 4 * MiB - 512 }), false, 'a FAT partition cut short');
});
