/**
 * `coffer test-restore`: a snapshot proven restorable without writing a restored copy, and
 * damage found with its reason — in the guest's filesystem when it was backed up (ext4 and
 * NTFS metadata blocks overwritten before the backup), and in the repository (a chunk file
 * corrupted after it). The filesystems' own checkers (e2fsck, fsck.fat, ntfsfix, xfs_repair)
 * are the independent judges.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import type { TestRestoreReport } from '../restore/index.js';
import { BOOT_MARK, buildBootDisk, buildExt4Disk, startTestVm, buildFilesVmDisk, buildNtfsImage, deriveDisk, requireTools, runTool, seededBytes } from '../testing/index.js';
import { assertExit, chunkIds, chunkPath, coffer, cofferJson, makeWorkDir, removeDir } from './cli-harness.js';

const BIG = 150_000_000; // the files tests' disk, so the cached fixture is shared
const env = { COFFER_PASSWORD: 'test-restore test' };
const slow = { env, timeoutMs: 300_000 };
let work: string;
let repo: string;

before(async () => {
  await requireTools('e2fsck', 'debugfs', 'fsck.fat', 'ntfsfix', 'xfs_repair');
  work = await makeWorkDir('test-restore');
  repo = `${work}/repo`;
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  assertExit(await coffer(['init', '--format', '1', '-r', repo], slow), 0);
});
after(() => removeDir(work));

async function testRestoreJson(reference: string, expectedExit: number, extra: string[] = []): Promise<TestRestoreReport> {
  const result = await coffer(['test-restore', '-r', repo, '--json', reference, ...extra], slow);
  assertExit(result, expectedExit);
  return JSON.parse(result.stdout.toString('utf8')) as TestRestoreReport;
}

test('a healthy disk with ext4, FAT32, NTFS and XFS passes, every checker clean, and the result is stored with the snapshot', async () => {
  const disk = await buildFilesVmDisk({ table: 'gpt', bigFileBytes: BIG });
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'healthy', disk.path], slow), 0);
  const report = await testRestoreJson('healthy:latest', 0);
  assert.equal(report.passed, true, report.failures.join('\n'));
  assert.deepEqual(report.failures, []);
  assert.equal(report.disks.length, 1);
  assert.deepEqual(report.disks[0]?.unreadable, []);
  assert.deepEqual(report.volumes.map((v) => v.filesystem), ['ext4', 'fat32', 'ntfs', 'xfs']);
  for (const v of report.volumes) {
    assert.equal(v.problemCount, 0, `${v.name}: ${v.problems.join('; ')}`);
    assert.ok(v.files > 10 && v.directories > 2, `${v.name}: ${v.files} files, ${v.directories} folders`);
    assert.ok(v.bytesRead >= BIG, `${v.name} read only ${v.bytesRead} bytes: big.bin alone is ${BIG}`);
    assert.equal(v.checker?.exitCode, 0, `${v.name}: ${v.checker?.command}: ${v.checker?.output}`);
    assert.equal(v.checker?.skipped, undefined);
  }
  assert.deepEqual(report.volumes.map((v) => v.checker?.command), ['e2fsck -fn', 'fsck.fat -n', 'ntfsfix -n', 'xfs_repair -n -f']);

  const text = await coffer(['test-restore', '-r', repo, '--no-fsck', 'healthy:latest'], slow);
  assertExit(text, 0);
  assert.match(text.stdout.toString('utf8'), /p1 ext4.*folders, \d+ files/);
  assert.match(text.stdout.toString('utf8'), /e2fsck -fn: skipped \(not asked for/);
  assert.match(text.stdout.toString('utf8'), /^PASSED in/m);

  const snapshots = await cofferJson<{ id: string; testRestore?: { time: string; passed: boolean; failures: string[] } }[]>(['snapshots', '-r', repo, '--vm', 'healthy'], slow);
  assert.equal(snapshots[0]?.testRestore?.passed, true);
});

test('an ext4 whose root folder block was overwritten before the backup fails, naming the volume and the checker', async () => {
  const base = await buildExt4Disk({ name: 'ext-probe-gpt', size: 48 << 20, label: 'gpt', partitionSizeMiB: 32, files: 'small' });
  const part = base.partitions[0] as { start: number };
  const spec = `${base.path}?offset=${part.start}`;
  const blockSize = Number(/Block size:\s+(\d+)/.exec(await runTool('debugfs', ['-R', 'stats', spec]))?.[1]);
  const rootBlock = Number((await runTool('debugfs', ['-R', 'blocks /', spec])).trim().split(/\s+/)[0]);
  assert.ok(blockSize > 0 && rootBlock > 0, `block size ${blockSize}, root block ${rootBlock}`);
  const damaged = await deriveDisk(base.path, 'test-restore-ext4-root', [{ offset: part.start + rootBlock * blockSize, bytes: seededBytes(42, blockSize) }]);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'ext4-damaged', damaged], slow), 0);
  const report = await testRestoreJson('ext4-damaged:latest', 15);
  assert.equal(report.passed, false);
  const p1 = report.volumes.find((v) => v.name === 'p1');
  assert.equal(p1?.filesystem, 'ext4');
  assert.ok((p1?.problemCount ?? 0) > 0, 'the walk found the damaged root folder');
  // e2fsck: 4 = errors left uncorrected (with -n, every error), 8 = it gave up; 12 = both.
  assert.ok(((p1?.checker?.exitCode ?? 0) & 4) !== 0, `e2fsck -fn finds uncorrected errors:\n${p1?.checker?.output}`);
  assert.equal(p1?.checker?.passed, false);
  assert.ok(report.failures.some((f) => /p1 \(ext4\).*damaged/.test(f)), report.failures.join('\n'));
  assert.ok(report.failures.some((f) => /e2fsck -fn exited with \d+/.test(f)), report.failures.join('\n'));
  assert.deepEqual(report.disks[0]?.unreadable, [], 'the backup itself is intact: the damage was in the guest');
});

test('an NTFS whose root folder MFT record was overwritten before the backup fails', async () => {
  const base = await buildNtfsImage({ sizeMiB: 96, bigFileBytes: 3_000_000 });
  const boot = Buffer.alloc(512);
  const handle = await fs.open(base, 'r');
  await handle.read(boot, 0, 512, 0).finally(() => handle.close());
  const clusterBytes = boot.readUInt16LE(0x0b) * boot.readUInt8(0x0d);
  const mftOffset = Number(boot.readBigUInt64LE(0x30)) * clusterBytes;
  const rootRecord = mftOffset + 5 * 1024; // MFT record 5 is the root folder
  const damaged = await deriveDisk(base, 'test-restore-ntfs-root', [{ offset: rootRecord, bytes: seededBytes(43, 1024) }]);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'ntfs-damaged', damaged], slow), 0);
  const report = await testRestoreJson('ntfs-damaged:latest', 15);
  assert.equal(report.passed, false);
  assert.ok(report.failures.some((f) => /disk/.test(f)), report.failures.join('\n'));
  assert.equal(report.volumes.length, 1);
});

test('a chunk corrupted in the repository is reported as unreadable bytes of the disk', async () => {
  const base = await buildExt4Disk({ name: 'ext-probe-gpt', size: 48 << 20, label: 'gpt', partitionSizeMiB: 32, files: 'small' });
  const own = `${work}/own-repo`;
  assertExit(await coffer(['init', '--format', '1', '-r', own], slow), 0);
  assertExit(await coffer(['backup', '-r', own, '--vm', 'rot', base.path], slow), 0);
  const ids = await chunkIds(own);
  const victim = chunkPath(own, ids[Math.floor(ids.length / 2)] as string);
  const bytes = await fs.readFile(victim);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 20) ^ 0x40, bytes.length - 20);
  await fs.writeFile(victim, bytes);
  const result = await coffer(['test-restore', '-r', own, '--json', 'rot:latest'], slow);
  assertExit(result, 15);
  const report = JSON.parse(result.stdout.toString('utf8')) as TestRestoreReport;
  const bad = report.disks[0]?.unreadable ?? [];
  assert.equal(bad.length, 1, JSON.stringify(bad));
  assert.match(bad[0]?.error ?? '', /corrupt|authentic/i);
  assert.ok(report.failures.some((f) => /unreadable block/.test(f)), report.failures.join('\n'));
});

test('--boot boots the VM straight from the backup, isolated, and fails with the console when the text never shows', async () => {
  await requireTools('qemu-system-x86_64', 'syslinux');
  const disk = await buildBootDisk();
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'bootable', disk], slow), 0);
  const boot = ['--boot', '--accel', 'tcg', '--boot-timeout', '120'];
  const good = await testRestoreJson('bootable:latest', 0, [...boot, '--boot-expect', BOOT_MARK]);
  assert.equal(good.boot?.passed, true, good.boot?.reason);
  assert.equal(good.boot?.bus, 'sata');
  assert.ok((good.boot?.secondsToText ?? 0) > 0);
  assert.match(good.boot?.serialTail ?? '', new RegExp(BOOT_MARK)); // QEMU is killed the moment it shows: what follows may not be there
  assert.deepEqual(good.volumes.map((v) => [v.filesystem, v.checker?.command, v.checker?.exitCode]), [['fat16', 'fsck.fat -n', 0]]);

  // The guest powers off after printing its line: waiting for another text fails fast, with the console.
  const bad = await testRestoreJson('bootable:latest', 15, ['--no-fsck', ...boot, '--boot-bus', 'virtio', '--boot-expect', 'login:']);
  assert.equal(bad.boot?.passed, false);
  assert.match(bad.boot?.reason ?? '', /QEMU exited .* before "login:" appeared/);
  assert.match(bad.boot?.serialTail ?? '', new RegExp(BOOT_MARK));
  assert.ok(bad.failures.some((f) => /^boot: /.test(f)), bad.failures.join('\n'));
  const snapshots = await cofferJson<{ id: string; testRestore?: { passed: boolean } }[]>(['snapshots', '-r', repo, '--vm', 'bootable'], slow);
  assert.equal(snapshots[0]?.testRestore?.passed, false, 'the newest result is the one shown');

  const usage = await coffer(['test-restore', '-r', repo, 'bootable:latest', '--boot', '--boot-bus', 'floppy'], slow);
  assertExit(usage, 2);
});

test('--boot takes the machine, memory and disk bus from the VM\'s stored definition', async () => {
  await requireTools('qemu-system-x86_64', 'syslinux');
  const disk = await buildBootDisk();
  const size = (await fs.stat(disk)).size;
  // A running QEMU (no need for the guest to run: the disk is what is backed up) with its
  // disk on virtio-scsi and 256 MiB; the backup stores its QMP description.
  const vm = await startTestVm({ disks: [{ name: 'disk0', size, format: 'raw', from: disk }], memoryMiB: 256 });
  try {
    assertExit(await coffer(['backup', '-r', repo, '--vm', 'described', '--qemu', vm.qmpSocket, '--no-freeze'], slow), 0);
  } finally {
    await vm.stop();
  }
  const report = await testRestoreJson('described:latest', 0, ['--no-fsck', '--boot', '--accel', 'tcg', '--boot-timeout', '120', '--boot-expect', BOOT_MARK]);
  assert.equal(report.boot?.passed, true, report.boot?.reason);
  assert.equal(report.boot?.bus, 'scsi');
  assert.match(report.boot?.machine ?? '', /^pc-q35-/);
});
