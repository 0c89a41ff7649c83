/**
 * `coffer serve`: a snapshot's disks over NBD straight from the repository, checked with real
 * NBD clients (qemu-img compare, nbdinfo, nbdcopy, qemu-io) and a QEMU that attaches the
 * export; writes through `--overlay` land in the overlay and never in the repository.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { humanMonitorCommand, QmpClient } from '../qmp/index.js';
import { buildExt4Disk, requireTools, startTestVm, type PartitionedDisk } from '../testing/index.js';
import { assertExit, assertOneLineError, assertSameBytes, coffer, makeWorkDir, removeDir, runTool, startCofferUntil, type RunningCoffer } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'serve' };
let work: string;
let repo: string;
let disk: PartitionedDisk;

before(async () => {
  await requireTools('qemu-img', 'qemu-io', 'nbdinfo', 'nbdcopy', 'sfdisk', 'mke2fs');
  work = await makeWorkDir('serve');
  repo = join(work, 'repo');
  disk = await buildExt4Disk({ name: 'serve-gpt', size: 64 << 20, label: 'gpt', partitionSizeMiB: 48, files: 'small' });
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'web01', disk.path], { env }), 0);
});
after(() => removeDir(work));

/** Starts `coffer serve` and waits until it says where it serves. */
async function serve(args: string[]): Promise<RunningCoffer> {
  return startCofferUntil(['serve', '-r', repo, 'web01:latest', ...args], 'nbd', { env, timeoutMs: 120_000 });
}

/** Stops `coffer serve`; returns what it wrote on stderr. */
async function stop(running: RunningCoffer): Promise<string> {
  running.child.kill('SIGTERM');
  const result = await running.done;
  assert.equal(result.code, 0, `coffer serve stops cleanly on SIGTERM: ${result.stderr}`);
  return result.stderr.toString();
}

/** sha256 of every file of the repository, to prove it unchanged. */
async function repositoryDigest(): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else hash.update(p).update(await readFile(p));
    }
  };
  await walk(repo);
  return hash.digest('hex');
}

test('a read-only export equals the disk, for qemu-img, nbdinfo and nbdcopy', async () => {
  const socket = join(work, 'ro.sock');
  const running = await serve(['--socket', socket]);
  try {
    const uri = `nbd+unix:///disk0?socket=${socket}`;
    const compare = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', disk.path, uri]);
    assert.equal(compare.code, 0, compare.stdout + compare.stderr);
    const info = JSON.parse((await runTool('nbdinfo', ['--json', uri])).stdout) as { exports: { 'export-size': number; 'is_read_only': boolean }[] };
    assert.equal(info.exports[0]?.['export-size'], disk.size);
    assert.equal(info.exports[0]?.is_read_only, true);
    const map = (await runTool('nbdinfo', ['--map', uri])).stdout;
    assert.match(map, /hole,zero/, 'holes are reported as holes');
    const copy = join(work, 'copy.raw');
    assert.equal((await runTool('nbdcopy', [uri, copy])).code, 0);
    await assertSameBytes(copy, disk.path, 'nbdcopy of the export');
    const write = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 1M 64k', uri]);
    assert.match(write.stdout + write.stderr, /Permission denied|read-only|Operation not permitted/i, 'a read-only export refuses writes');
  } finally {
    await stop(running);
  }
});

test('an incremental of 64 KiB blocks (a live disk\'s) read by nbdcopy and qemu-img compare equals the disk', async () => {
  // nbdcopy asks 256 KiB at a time: four whole blocks per request, copied from their frames
  // straight into the reply (snapshot-disk.ts); the incremental's new frames hold blocks from
  // all over the disk, its other blocks point into the full's frames.
  const repo64 = join(work, 'repo64');
  const image = join(work, 'disk64.raw');
  await copyFile(disk.path, image);
  assertExit(await coffer(['init', '-r', repo64, '--block-size', '64K'], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo64, '--vm', 'live01', image], { env }), 0);
  const handle = await open(image, 'r+');
  try {
    for (let at = 4096; at < disk.size; at += 3 * 65536 + 4096) await handle.write(Buffer.alloc(4096, at % 251), 0, 4096, at);
  } finally {
    await handle.close();
  }
  assertExit(await coffer(['backup', '-r', repo64, '--vm', 'live01', image], { env }), 0);
  const socket = join(work, 'live.sock');
  const running = await startCofferUntil(['serve', '-r', repo64, 'live01:latest', '--socket', socket], 'nbd', { env, timeoutMs: 120_000 });
  try {
    const uri = `nbd+unix:///disk0?socket=${socket}`;
    const copy = join(work, 'copy64.raw');
    assert.equal((await runTool('nbdcopy', ['--requests=64', uri, copy])).code, 0);
    await assertSameBytes(copy, image, 'nbdcopy of the 64 KiB-block incremental');
    const compare = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, uri]);
    assert.equal(compare.code, 0, compare.stdout + compare.stderr);
  } finally {
    await stop(running);
  }
});

test('writes through --overlay stay in the overlay; the repository never changes', async () => {
  const before = await repositoryDigest();
  const socket = join(work, 'rw.sock');
  const overlay = join(work, 'overlay');
  const uri = `nbd+unix:///disk0?socket=${socket}`;
  let running = await serve(['--socket', socket, '--overlay', overlay]);
  try {
    const write = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 1M 64k', '-c', 'write -P 0x6b 4095 2', uri]);
    assert.equal(write.code, 0, write.stderr);
    const read = await runTool('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 1M 64k', '-c', 'read -P 0x6b 4095 2', uri]);
    assert.doesNotMatch(read.stdout, /Pattern verification failed/, read.stdout);
    // A second writer on the same overlay would corrupt it: refused while the first serves.
    const second = await coffer(['serve', '-r', repo, 'web01:latest', '--socket', join(work, 'rw2.sock'), '--overlay', overlay], { env, timeoutMs: 120_000 });
    assertExit(second, 4);
    assert.match(assertOneLineError(second), /overlay is in use by process \d+/);
  } finally {
    await stop(running);
  }
  running = await serve(['--socket', socket, '--overlay', overlay]);
  try {
    const read = await runTool('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 1M 64k', uri]);
    assert.doesNotMatch(read.stdout, /Pattern verification failed/, 'the overlay keeps the writes across restarts');
    const untouched = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', disk.path, uri]);
    assert.equal(untouched.code, 1, 'the export differs from the disk where it was written');
  } finally {
    await stop(running);
  }
  assert.equal(await repositoryDigest(), before, 'not one byte of the repository changed');
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], { env }), 0);
  // Laid over another snapshot, the overlay's writes would land in a disk they never belonged to.
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'web02', disk.path], { env }), 0);
  const other = await coffer(['serve', '-r', repo, 'web02:latest', '--socket', join(work, 'rw3.sock'), '--overlay', overlay], { env, timeoutMs: 120_000 });
  assertExit(other, 4);
  assert.match(assertOneLineError(other), /this overlay was made over disk disk0 of snapshot [0-9a-f]{8} \(web01\), not over disk disk0 of snapshot [0-9a-f]{8} \(web02\)/);
});

test('a QEMU attaches the export as a disk and reads the backup, every byte of it', async () => {
  const socket = join(work, 'vm.sock');
  const running = await serve(['--socket', socket]);
  const vm = await startTestVm({
    disks: [{ name: 'scratch', size: 1 << 20 }],
    extraArgs: ['-blockdev', `driver=nbd,server.type=unix,server.path=${socket},export=disk0,node-name=restored,read-only=on`, '-device', 'virtio-blk-pci,drive=restored,id=restored-dev'],
  });
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect({ path: vm.qmpSocket });
    // The ext4 superblock magic 0xEF53 at 1024 + 56 of the partition, read by the VM's block layer.
    const reply = await humanMonitorCommand(qmp, `qemu-io -d /machine/peripheral/restored-dev/virtio-backend "read -v ${(disk.partitions[0]?.start ?? 0) + 1024 + 56} 2"`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.match(reply + vm.output(), /53 ef/i, `the VM read the backed-up superblock:\n${reply}\n${vm.output()}`);
    // And every byte: QEMU copies the attached export with its own block job into a file.
    const copy = join(work, 'qemu-copy.raw');
    assert.equal((await runTool('qemu-img', ['create', '-q', '-f', 'raw', copy, String(disk.size)])).code, 0);
    await qmp.execute('blockdev-add', { driver: 'raw', 'node-name': 'copy', file: { driver: 'file', filename: copy } });
    const done = qmp.waitForEvent('BLOCK_JOB_COMPLETED', (e) => e.data['device'] === 'copy-job', { timeoutMs: 120_000 });
    await qmp.execute('blockdev-backup', { 'job-id': 'copy-job', device: 'restored', target: 'copy', sync: 'full' });
    const completed = await done;
    assert.equal(completed.data['error'], undefined, String(completed.data['error']));
    await qmp.execute('blockdev-del', { 'node-name': 'copy' });
    await assertSameBytes(copy, disk.path, 'the disk as QEMU read it through the export');
  } finally {
    await qmp?.close();
    await vm.stop();
    await stop(running);
  }
});

test('a damaged chunk under a reader is answered with EIO and told once on stderr, with the count of repeats', async () => {
  const damaged = join(work, 'repo-damaged');
  await runTool('cp', ['-a', repo, damaged]);
  // The largest pack (or chunk) of the repository holds the disk's data: a flipped run of bytes in its middle.
  const files = (await runTool('find', [damaged, '-type', 'f', '(', '-path', '*/packs/*', '-o', '-path', '*/chunks/*', ')', '-printf', '%s %p\\n'])).stdout.trim().split('\n').map((l) => l.split(' ')).sort((a, b) => Number(b[0]) - Number(a[0]));
  const biggest = files[0]?.[1] as string;
  const handle = await open(biggest, 'r+');
  const middle = Math.floor(Number(files[0]?.[0]) / 2);
  await handle.write(Buffer.alloc(64, 0xa5), 0, 64, middle);
  await handle.close();
  const socket = join(work, 'damaged.sock');
  const running = await startCofferUntil(['serve', '-r', damaged, 'web01:latest', '--socket', socket], 'nbd', { env, timeoutMs: 120_000 });
  let stderr: string;
  try {
    const uri = `nbd+unix:///disk0?socket=${socket}`;
    // One connection, one request at a time: each copy reads the damaged chunk exactly once.
    for (let i = 0; i < 3; i++) {
      const copy = await runTool('nbdcopy', ['--connections=1', '--requests=1', uri, 'null:']);
      assert.notEqual(copy.code, 0, 'nbdcopy fails on the damaged range');
      assert.match(copy.stderr, /Input\/output error|EIO/i, copy.stderr);
    }
  } finally {
    stderr = await stop(running);
  }
  const warnings = stderr.split('\n').filter((l) => l.startsWith('coffer: warning: NBD client:'));
  assert.ok(warnings.length >= 1, stderr);
  assert.match(warnings[0] ?? '', /\(E_CORRUPT_OBJECT\)/, 'the damage is named');
  // Three copies read the same damaged chunks: each is written once, then counted.
  const chunk = /chunk ([0-9a-f]{64})/.exec(warnings[0] ?? '')?.[1] as string;
  const aboutIt = warnings.filter((l) => l.includes(chunk));
  assert.equal(aboutIt.length, 2, `repeats are counted, not each written: ${stderr}`);
  assert.match(aboutIt[1] ?? '', /\(2 more like it since the last report\)$/);
});
