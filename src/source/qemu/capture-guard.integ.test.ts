/**
 * A live capture that cannot hold must fail the backup, never the VM, and never record a
 * snapshot mixing two instants (capture-guard.ts). Real QEMU (TCG, no guest OS), guest writes
 * by HMP qemu-io through a second monitor, the scratch folder on a small tmpfs (CI runs as
 * root). Oracles: the disk's bytes as qemu-img reads the image file, and qemu-io's own report
 * of a failed write on QEMU's stdout.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../../backup/index.js';
import { CofferError } from '../../errors/index.js';
import { qemuIo, QmpClient, queryBlockExports, queryBlockJobs, queryNamedBlockNodes } from '../../qmp/index.js';
import { LocalBackend, initRepository, listSnapshots, openRepository, type Repository } from '../../repo/index.js';
import { mountSmallFilesystem, requireTools, runTool, startTestVm, type TestVm } from '../../testing/index.js';
import { openQemuSource } from '../index.js';

const MiB = 1024 * 1024;
const DISK = 64 * MiB;

let vm: TestVm;
let monitor: QmpClient;
let work: string;
let repo: Repository;
const model = Buffer.alloc(DISK);
const unmounts: (() => Promise<void>)[] = [];

before(async () => {
  await requireTools('qemu-system-x86_64', 'qemu-img');
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-guard-test-'));
  const testSocket = path.join(work, 'test.qmp');
  vm = await startTestVm({ disks: [{ name: 'disk0', size: DISK }], extraArgs: ['-qmp', `unix:${testSocket},server=on,wait=off`] });
  monitor = await QmpClient.connect({ path: testSocket });
  // Old data everywhere the tests overwrite: each overwrite makes QEMU copy 1 MiB to the overlay.
  await write(0, 32 * MiB, 0x11);
  const backend = new LocalBackend(path.join(work, 'repo'));
  await initRepository(backend, { passphrase: 'guard', kdf: { N: 1024, r: 8, p: 1 } });
  repo = await openRepository(backend, { passphrase: 'guard', threads: 2 });
});
after(async () => {
  await monitor?.close();
  await vm?.stop();
  await repo?.close();
  for (const unmount of unmounts) await unmount();
  await fs.rm(work, { recursive: true, force: true });
});

async function write(offset: number, length: number, pattern: number): Promise<void> {
  await qemuIo(monitor, { device: 'disk0-dev', command: `write -P ${pattern} ${offset} ${length}` });
  model.fill(pattern, offset, offset + length);
}

/** A tmpfs of `size` bytes: a scratch filesystem that fills. */
async function smallFilesystem(name: string, size: number): Promise<string> {
  const dir = path.join(work, name);
  unmounts.push(await mountSmallFilesystem(dir, size));
  return dir;
}

/** The disk as the image file holds it (QEMU flushed first; read beside the running VM). */
async function diskBytes(): Promise<Buffer> {
  await qemuIo(monitor, { device: 'disk0-dev', command: 'flush' });
  const raw = path.join(work, 'disk0-now.raw');
  await runTool('qemu-img', ['convert', '-U', '-O', 'raw', (vm.disks[0] as { path: string }).path, raw]);
  const bytes = await fs.readFile(raw);
  await fs.rm(raw);
  return bytes;
}

async function assertNoCaptureLeft(): Promise<void> {
  assert.deepEqual((await queryBlockJobs(monitor)).map((j) => j.id), []);
  assert.deepEqual((await queryBlockExports(monitor)).map((e) => e.id), []);
  const fleece = (await queryNamedBlockNodes(monitor)).filter((n) => n.nodeName?.startsWith('coffer-fleece-'));
  assert.deepEqual(fleece.map((n) => n.nodeName), []);
}

function isCode(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof CofferError, `a CofferError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

test('a scratch filesystem that fills ends the capture: the backup fails, every guest write lands', async () => {
  const scratch = await smallFilesystem('scratch-small', 16 * MiB);
  const source = await openQemuSource({ vm: 'guarded', qmp: { path: vm.qmpSocket }, scratchDir: scratch, scratchMinFreeBytes: 6 * MiB, scratchPollMs: 20 });
  try {
    const device = source.disks[0]?.device;
    assert.ok(device);
    // 16 MiB of overwrites: QEMU copies 16 MiB of old data into a 16 MiB filesystem. Without the
    // guard the copies fail once it is full, and so do the guest's writes (checked on QEMU 7.2).
    for (let i = 0; i < 16; i++) {
      await write(i * MiB, MiB, 0x40 + i);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await assert.rejects(device.read(0, 65536), isCode('E_NO_SPACE'));
    await assert.rejects(source.confirm?.() ?? Promise.resolve(), (error: unknown) => {
      isCode('E_NO_SPACE')(error);
      assert.match((error as Error).message, new RegExp(`${scratch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*--scratch-dir`));
      return true;
    });
    assert.doesNotMatch(vm.output(), /write failed/, 'no guest write was refused');
    assert.ok((await diskBytes()).equals(model), 'the disk holds every write the guest made');
    await assertNoCaptureLeft();
  } finally {
    await source.close();
  }
  const status = (await monitor.execute('query-status')) as { status: string };
  assert.equal(status.status, 'running');
  const leftovers = await fs.readdir(scratch);
  assert.deepEqual(leftovers, [], 'the scratch folder is emptied');
});

test('a break while the capture is still starting (a post-capture hook runs) ends it whole, with the break as the error', async () => {
  const scratch = await smallFilesystem('scratch-starting', 16 * MiB);
  const filler = path.join(scratch, 'filler');
  const starting = openQemuSource({
    vm: 'guarded', qmp: { path: vm.qmpSocket }, scratchDir: scratch, scratchMinFreeBytes: 6 * MiB, scratchPollMs: 20,
    // Something else fills the scratch filesystem while the hook runs: the guard breaks mid-start.
    hooks: { afterCapture: async () => {
      await fs.writeFile(filler, Buffer.alloc(11 * MiB));
      await new Promise((resolve) => setTimeout(resolve, 300));
    } },
  });
  await assert.rejects(starting, isCode('E_NO_SPACE'));
  await fs.rm(filler);
  await assertNoCaptureLeft();
  // Nothing left behind: the next capture starts its NBD server and reads.
  const next = await openQemuSource({ vm: 'guarded', qmp: { path: vm.qmpSocket }, scratchDir: work });
  try {
    assert.ok(Buffer.from(await (next.disks[0]?.device.read(0, MiB) ?? Promise.resolve(new Uint8Array()))).equals(model.subarray(0, MiB)));
  } finally {
    await next.close();
  }
});

test('a scratch filesystem without room refuses the backup before QEMU is touched', async () => {
  const scratch = await smallFilesystem('scratch-tiny', 8 * MiB);
  const bitmapsBefore = (await queryNamedBlockNodes(monitor)).flatMap((n) => n.dirtyBitmaps.map((b) => b.name));
  await assert.rejects(openQemuSource({ vm: 'guarded', qmp: { path: vm.qmpSocket }, scratchDir: scratch, scratchMinFreeBytes: 8 * MiB }), (error: unknown) => {
    isCode('E_NO_SPACE')(error);
    assert.match((error as Error).message, /has [\d.]+ (KiB|MiB) free; a live backup needs at least 16\.0 MiB there/);
    return true;
  });
  assert.deepEqual((await queryNamedBlockNodes(monitor)).flatMap((n) => n.dirtyBitmaps.map((b) => b.name)), bitmapsBefore);
  await assertNoCaptureLeft();
});

test('a fleecing job ended by someone else breaks the instant: no snapshot mixes two', async () => {
  const fleecingJob = async (): Promise<string> => {
    const job = (await queryBlockJobs(monitor)).find((j) => j.id.startsWith('coffer-job-'));
    assert.ok(job, 'the capture runs a fleecing job');
    return job.id;
  };
  // Every disk read, then the job cancelled, then the guest writes: the reads were of one
  // instant, but nothing proves the view held until the end: confirm() refuses.
  const first = await openQemuSource({ vm: 'guarded', qmp: { path: vm.qmpSocket }, scratchDir: work });
  try {
    const device = first.disks[0]?.device;
    assert.ok(device);
    const before = Buffer.from(model);
    assert.ok(Buffer.from(await device.read(0, DISK)).equals(before));
    const cancelled = monitor.waitForEvent('BLOCK_JOB_CANCELLED', () => true, { timeoutMs: 30_000 });
    await monitor.execute('block-job-cancel', { device: await fleecingJob(), force: true });
    await cancelled;
    await write(0, MiB, 0x77);
    await assert.rejects(first.confirm?.() ?? Promise.resolve(), isCode('E_SOURCE_UNREADABLE'));
    await assert.rejects(device.read(0, MiB), isCode('E_SOURCE_UNREADABLE'));
  } finally {
    await first.close();
  }
  // A backup whose job is cancelled before it reads fails, and records nothing.
  const second = await openQemuSource({ vm: 'guarded', qmp: { path: vm.qmpSocket }, scratchDir: work });
  try {
    const cancelled = monitor.waitForEvent('BLOCK_JOB_CANCELLED', () => true, { timeoutMs: 30_000 });
    await monitor.execute('block-job-cancel', { device: await fleecingJob(), force: true });
    await cancelled;
    await write(2 * MiB, MiB, 0x78);
    await assert.rejects(backupVm(repo, second), isCode('E_SOURCE_UNREADABLE'));
  } finally {
    await second.close();
  }
  assert.deepEqual(await listSnapshots(repo, { vm: 'guarded' }), []);
  await assertNoCaptureLeft();
  // The next capture holds, and its snapshot is the disk at its instant.
  const third = await openQemuSource({ vm: 'guarded', qmp: { path: vm.qmpSocket }, scratchDir: work });
  let snapshotId: string;
  const expected = Buffer.from(model);
  try {
    snapshotId = (await backupVm(repo, third)).id;
  } finally {
    await third.close();
  }
  const { SnapshotDisk } = await import('../../restore/index.js');
  const snapshot = (await listSnapshots(repo, { vm: 'guarded' })).find((s) => s.id === snapshotId);
  assert.ok(snapshot);
  const restored = new SnapshotDisk(repo, snapshot.id, snapshot.disks[0] as never);
  assert.ok(Buffer.from(await restored.read(0, DISK)).equals(expected));
});
