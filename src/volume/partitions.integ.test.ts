/**
 * listVolumes on real partitioned disks (sfdisk, mke2fs, mformat, cryptsetup), checked
 * against independent readers: `sfdisk -J` for tables, `blkid -p` for what a volume holds;
 * then on hostile copies of them (an EBR loop, partitions past the end, damaged or absurd GPT
 * headers), made by changing a few bytes of the real disks.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { crc32 } from 'node:zlib';
import { RawImage } from '../disk/index.js';
import {
  GPT_DISK_PARTITIONS,
  buildGpt4kDisk,
  buildGptVolumesDisk,
  buildMbrVolumesDisk,
  buildWholeDiskExt4,
  buildWholeDiskFat,
  buildWholeDiskNtfs,
  deriveDisk,
  requireTools,
  runTool,
} from '../testing/index.js';
import { listVolumes, type Volume } from './index.js';

const MiB = 1024 * 1024;

before(() => requireTools('sfdisk', 'mke2fs', 'mformat', 'mkntfs', 'cryptsetup', 'blkid', 'losetup'));

async function volumesOf(...paths: string[]): Promise<Volume[]> {
  const disks = await Promise.all(paths.map((p) => RawImage.open(p)));
  try {
    return await listVolumes(disks);
  } finally {
    await Promise.all(disks.map((d) => d.close()));
  }
}

interface SfdiskPartition { node: string; start: number; size: number; type: string; uuid?: string; name?: string }
async function sfdisk(path: string): Promise<{ label: string; sectorsize: number; partitions: SfdiskPartition[] }> {
  return (JSON.parse(await runTool('sfdisk', ['-J', path])) as { partitiontable: { label: string; sectorsize: number; partitions: SfdiskPartition[] } }).partitiontable;
}

/** `blkid -p` of the bytes at `offset`: TYPE, USAGE, … (empty when blkid finds nothing). */
async function blkid(path: string, offset: number, size?: number): Promise<Record<string, string>> {
  const args = ['-p', '-o', 'export', '-O', String(offset), ...(size === undefined ? [] : ['-S', String(size)]), path];
  const out = await runTool('blkid', args).catch(() => ''); // exit 2: nothing found
  return Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

const summary = (v: Volume) => ({ name: v.name, offset: v.offset, size: v.size, partitionType: v.partitionType, label: v.label, uuid: v.uuid });

test('GPT: every partition as sfdisk reads it: number, start, size, type GUID, name, GUID', async () => {
  const path = await buildGptVolumesDisk();
  const table = await sfdisk(path);
  assert.equal(table.label, 'gpt');
  const volumes = await volumesOf(path);
  assert.deepEqual(volumes.map(summary), table.partitions.map((p) => ({
    name: `p${/(\d+)$/.exec(p.node)?.[1]}`,
    offset: p.start * 512,
    size: p.size * 512,
    partitionType: p.type,
    label: p.name ?? '',
    uuid: p.uuid,
  })));
  assert.equal(volumes.length, GPT_DISK_PARTITIONS.length);
  assert.deepEqual(volumes.map((v) => v.typeDescription), [
    'EFI System', 'BIOS boot', 'Linux filesystem', 'Linux swap', 'Microsoft basic data', 'Microsoft reserved',
    'Windows recovery', 'Linux LVM', 'Linux filesystem', 'Linux filesystem', 'Microsoft basic data',
  ]);
  assert.ok(volumes.every((v) => v.kind === 'partition' && v.disk === 0 && v.warnings === undefined));
});

test('GPT: LUKS2 and LUKS1 containers are marked as blkid identifies them, BitLocker by its OEM id', async () => {
  const path = await buildGptVolumesDisk();
  const volumes = await volumesOf(path);
  for (const volume of volumes) {
    const probe = await blkid(path, volume.offset!, volume.size);
    assert.equal(volume.encrypted === 'luks', probe['TYPE'] === 'crypto_LUKS', `${volume.name}: blkid says ${JSON.stringify(probe)}`);
  }
  assert.deepEqual(volumes.filter((v) => v.encrypted).map((v) => [v.name, v.encrypted]), [['p9', 'luks'], ['p10', 'luks'], ['p11', 'bitlocker']]);
  const luks = volumes.find((v) => v.name === 'p9')!;
  assert.equal((await blkid(path, luks.offset!, luks.size))['VERSION'], '2');
});

test('GPT with 4096-byte sectors: header at byte 4096, LBAs in 4 KiB units', async () => {
  const volumes = await volumesOf(await buildGpt4kDisk());
  assert.deepEqual(volumes.map((v) => [v.name, v.offset, v.size, v.label, v.typeDescription]), [
    ['p1', 256 * 4096, 2048 * 4096, 'four k', 'Linux filesystem'],
    ['p2', 2304 * 4096, 1024 * 4096, '', 'Linux swap'],
  ]);
});

test('MBR: primaries, the extended partition and its logical partitions numbered from 5, as sfdisk reads them', async () => {
  const path = await buildMbrVolumesDisk();
  const table = await sfdisk(path);
  assert.equal(table.label, 'dos');
  const volumes = await volumesOf(path);
  assert.deepEqual(volumes.map((v) => [v.name, v.offset, v.size, v.partitionType]), table.partitions.map((p) => [
    `p${/(\d+)$/.exec(p.node)?.[1]}`, p.start * 512, p.size * 512, `0x${p.type.padStart(2, '0')}`,
  ]));
  assert.deepEqual(volumes.map((v) => v.name), ['p1', 'p2', 'p3', 'p5', 'p6', 'p7']);
  assert.deepEqual(volumes.map((v) => v.typeDescription), ['Linux', 'NTFS/exFAT/HPFS', 'extended', 'Linux', 'Linux swap', 'Linux LVM']);
  assert.ok(volumes.every((v) => v.warnings === undefined));
});

test('no partition table: an ext4 over the whole disk is one volume "disk"', async () => {
  const path = await buildWholeDiskExt4();
  assert.equal((await blkid(path, 0))['TYPE'], 'ext4');
  await assert.rejects(runTool('sfdisk', ['-J', path]), /does not contain a recognized partition table/);
  const volumes = await volumesOf(path);
  assert.deepEqual(volumes.map((v) => [v.name, v.kind, v.offset, v.size, v.warnings]), [['disk', 'whole-disk', 0, 16 * MiB, undefined]]);
});

test('a FAT boot sector on the whole disk is not read as an MBR (sfdisk is fooled, blkid is not)', async () => {
  const path = await buildWholeDiskFat();
  const fooled = await sfdisk(path);
  assert.deepEqual(fooled.partitions.map((p) => [p.start, p.type]), [[0, '4']]); // mformat's entry in its boot sector
  assert.equal((await blkid(path, 0))['TYPE'], 'vfat');
  const volumes = await volumesOf(path);
  assert.deepEqual(volumes.map((v) => [v.name, v.kind, v.offset, v.size]), [['disk', 'whole-disk', 0, 16 * MiB]]);
});

test('an NTFS boot sector on the whole disk is one volume "disk", with no warning about an empty MBR', async () => {
  const path = await buildWholeDiskNtfs();
  assert.equal((await blkid(path, 0))['TYPE'], 'ntfs');
  const volumes = await volumesOf(path);
  assert.deepEqual(volumes.map((v) => [v.name, v.kind, v.offset, v.size, v.warnings]), [['disk', 'whole-disk', 0, 16 * MiB, undefined]]);
});

test('GPT with a damaged primary header or entry array: the backup is read, with a warning', async () => {
  const path = await buildGptVolumesDisk();
  const expected = (await volumesOf(path)).map(summary);
  const cases = [
    { name: 'volume-gpt-bad-header', offset: 512 + 60 }, // inside the disk GUID: header CRC fails
    { name: 'volume-gpt-bad-entries', offset: 1024 + 60 }, // inside p1's name: array CRC fails
  ];
  for (const c of cases) {
    const damaged = await deriveDisk(path, c.name, [{ offset: c.offset, bytes: Buffer.from([0x5a, 0xa5]) }]);
    const volumes = await volumesOf(damaged);
    assert.deepEqual(volumes.map(summary), expected, c.name);
    for (const v of volumes) assert.match(v.warnings?.[0] ?? '', /primary GPT is damaged .*checksum mismatch.*backup header at LBA 131071/, c.name);
  }
  const both = await deriveDisk(path, 'volume-gpt-bad-both', [
    { offset: 512 + 60, bytes: Buffer.from([0x5a]) },
    { offset: 64 * MiB - 512 + 60, bytes: Buffer.from([0x5a]) },
  ]);
  const volumes = await volumesOf(both);
  assert.deepEqual(volumes.map((v) => [v.name, v.kind]), [['disk', 'whole-disk']]);
  assert.match(volumes[0]!.warnings?.[0] ?? '', /both GPT copies are damaged/);
});

test('GPT with an absurd entry count (and a valid header checksum) is refused at the cap, not allocated', async () => {
  const path = await buildGptVolumesDisk();
  const header = Buffer.from((await readBytes(path, 512, 92)));
  header.writeUInt32LE(0xffffffff, 80);
  header.writeUInt32LE(0, 16);
  header.writeUInt32LE(crc32(header) >>> 0, 16);
  const primaryOnly = await deriveDisk(path, 'volume-gpt-absurd-count', [{ offset: 512, bytes: header }]);
  const volumes = await volumesOf(primaryOnly);
  assert.equal(volumes.length, GPT_DISK_PARTITIONS.length);
  assert.match(volumes[0]!.warnings?.[0] ?? '', /4294967295 entries of 128 bytes exceed the 1048576-byte cap.*backup/);

  const backup = Buffer.from(await readBytes(path, 64 * MiB - 512, 92));
  backup.writeUInt32LE(0x7fffffff, 80);
  backup.writeUInt32LE(0, 16);
  backup.writeUInt32LE(crc32(backup) >>> 0, 16);
  const both = await deriveDisk(primaryOnly, 'volume-gpt-absurd-count-both', [{ offset: 64 * MiB - 512, bytes: backup }]);
  const none = await volumesOf(both);
  assert.deepEqual(none.map((v) => v.name), ['disk']);
  assert.match(none[0]!.warnings?.[0] ?? '', /both GPT copies are damaged/);
});

test('MBR: an EBR chain that loops back stops with a warning, the partitions before the loop stay listed', async () => {
  const path = await buildMbrVolumesDisk();
  const extended = (await sfdisk(path)).partitions.find((p) => p.type === '5')!;
  // The first EBR's link entry (slot 2) pointed back at the first EBR itself (relative LBA 0).
  const link = Buffer.alloc(16);
  link[4] = 0x05;
  link.writeUInt32LE(0, 8);
  link.writeUInt32LE(2048, 12);
  const looped = await deriveDisk(path, 'volume-mbr-ebr-loop', [{ offset: extended.start * 512 + 446 + 16, bytes: link }]);
  const volumes = await volumesOf(looped);
  assert.deepEqual(volumes.map((v) => v.name), ['p1', 'p2', 'p3', 'p5']);
  assert.match(volumes[2]!.warnings?.join() ?? '', /loops back to the EBR at sector 34816/);
});

test('MBR: a partition past the disk end is clipped, one starting past it is listed empty, both with warnings', async () => {
  const path = await buildMbrVolumesDisk();
  const entry = (slot: number, type: number, lba: number, sectors: number): { offset: number; bytes: Buffer } => {
    const bytes = Buffer.alloc(16);
    bytes[4] = type;
    bytes.writeUInt32LE(lba, 8);
    bytes.writeUInt32LE(sectors, 12);
    return { offset: 446 + slot * 16, bytes };
  };
  const hostile = await deriveDisk(path, 'volume-mbr-past-end', [
    entry(1, 0x07, 18432, 0xfffff000), // p2 runs far past the 64 MiB disk
    entry(3, 0x83, 0xfffffff0, 16), // p4 starts past it
  ]);
  const volumes = await volumesOf(hostile);
  const p2 = volumes.find((v) => v.name === 'p2')!;
  assert.equal(p2.size, 64 * MiB - 18432 * 512);
  assert.match(p2.warnings?.join() ?? '', /beyond the end of the disk .* clipped/);
  assert.equal(p2.device.size, p2.size);
  const p4 = volumes.find((v) => v.name === 'p4')!;
  assert.deepEqual([p4.offset, p4.size, p4.device.size], [0xfffffff0 * 512, 0, 0]);
  assert.match(p4.warnings?.join() ?? '', /beyond the end of the disk .* listed empty/);
});

test('a partition device reads exactly the bytes of its window of the disk', async () => {
  const path = await buildGptVolumesDisk();
  const disk = await RawImage.open(path);
  try {
    const volumes = await listVolumes([disk]);
    const luks = volumes.find((v) => v.name === 'p9')!;
    const head = await luks.device.read(0, 4096);
    assert.deepEqual(Buffer.from(head), Buffer.from(await disk.read(luks.offset!, 4096)));
    assert.equal(Buffer.from(head).toString('latin1', 0, 4), 'LUKS');
  } finally {
    await disk.close();
  }
});

async function readBytes(path: string, offset: number, length: number): Promise<Uint8Array> {
  const disk = await RawImage.open(path);
  try {
    return await disk.read(offset, length);
  } finally {
    await disk.close();
  }
}
