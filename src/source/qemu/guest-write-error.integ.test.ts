/**
 * A guest write that fails while a live capture holds the disks (BLOCK_IO_ERROR): the
 * capture ends at once and the VM that QEMU paused on it is resumed, so the write is retried
 * on the disk alone and the guest never sees it fail (qemu-capture.ts).
 *
 * Real QEMU (TCG) booting a real Linux guest with the real qemu-ga (src/testing/agent-guest.ts);
 * the guest writes with busybox dd to a second virtio disk, /dev/vdb, started through the
 * agent's guest-exec. The scratch folder is a 4 MiB tmpfs and the scratch watch never looks
 * (its poll is 10 minutes): the copy-before-write of 6 MiB of old data fills it, the
 * guest's write fails with ENOSPC, and QEMU's default `werror=enospc` pauses the VM. Without
 * the resume, the VM stays paused and the guest's dd never ends. And a VM paused so under a
 * run killed mid-capture (its overlay and job made by hand) is resumed by the next run.
 * Oracles: the guest's own dd exit status and sha256sum of what it wrote, against the bytes
 * of the disk's image file read on the host; QEMU's run state.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../../backup/index.js';
import { CofferError } from '../../errors/index.js';
import { blockdevAdd, blockdevBackup, fleecingOverlayOptions, GuestAgentClient, QmpClient, queryBlockExports, queryBlockJobs, queryNamedBlockNodes, queryStatus } from '../../qmp/index.js';
import { LocalBackend, initRepository, listSnapshots, openRepository, type Repository } from '../../repo/index.js';
import { guestOverwriteScript, imageStartSha256, mountSmallFilesystem, readGuestOverwrite, requireTools, runTool, startAgentGuest, type AgentGuest } from '../../testing/index.js';
import { openQemuSource, type QemuSourceOptions } from '../index.js';

const MiB = 1024 * 1024;
const DATA_DISK = 16 * MiB;
/** What the guest overwrites: more than the scratch filesystem holds. */
const WRITE = 6 * MiB;
/** The scratch watch never looks during a test: the failed write is the only signal. */
const NEVER_MS = 600_000;

let guest: AgentGuest;
let monitor: QmpClient;
let work: string;
let dataDisk: string;
let repo: Repository;
const unmounts: (() => Promise<void>)[] = [];

before(async () => {
  await requireTools('qemu-system-x86_64', 'qemu-img', 'mount');
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-guest-write-'));
  dataDisk = path.join(work, 'data.raw');
  // Old data everywhere the guest overwrites: QEMU must copy it to the overlay first.
  await fs.writeFile(dataDisk, randomBytes(DATA_DISK));
  const testSocket = path.join(work, 'test.qmp');
  guest = await startAgentGuest({
    extraArgs: [
      '-qmp', `unix:${testSocket},server=on,wait=off`,
      '-blockdev', `driver=file,filename=${dataDisk},node-name=data-file`,
      '-blockdev', 'driver=raw,file=data-file,node-name=data',
      '-device', 'virtio-blk-pci,id=data-dev,drive=data',
    ],
  });
  monitor = await QmpClient.connect({ path: testSocket });
  const backend = new LocalBackend(path.join(work, 'repo'));
  await initRepository(backend, { passphrase: 'guest-write', kdf: { N: 1024, r: 8, p: 1 } });
  repo = await openRepository(backend, { passphrase: 'guest-write', threads: 2 });
});
after(async () => {
  await monitor?.close();
  await guest?.stop();
  await repo?.close();
  for (const unmount of unmounts) await unmount();
  await fs.rm(work, { recursive: true, force: true });
});

/** A tmpfs of `size` bytes. */
async function smallFilesystem(name: string, size: number): Promise<string> {
  const dir = path.join(work, name);
  unmounts.push(await mountSmallFilesystem(dir, size));
  return dir;
}

/** Runs a busybox shell script in the guest through qemu-ga's guest-exec; waits for its end. */
async function inGuest(script: string, timeoutMs = 90_000): Promise<{ exitcode: number; out: string }> {
  const agent = await GuestAgentClient.connect(guest.agentSocket, { timeoutMs: 20_000 });
  try {
    const started = (await agent.execute('guest-exec', { path: '/bin/busybox', arg: ['sh', '-c', script], 'capture-output': true }, { timeoutMs })) as { pid: number };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = (await agent.execute('guest-exec-status', { pid: started.pid }, { timeoutMs })) as { exited: boolean; exitcode?: number; 'out-data'?: string; 'err-data'?: string };
      if (status.exited) {
        const text = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('utf8');
        return { exitcode: status.exitcode ?? -1, out: text(status['out-data']) + text(status['err-data']) };
      }
      if (Date.now() > deadline) throw new Error(`the guest's script did not end within ${timeoutMs} ms (is the VM paused? ${JSON.stringify(await queryStatus(monitor))}): ${script}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await agent.close();
  }
}

/** The guest writes WRITE fresh random bytes at the start of /dev/vdb: its dd's exit status and their SHA-256. */
async function guestOverwritesDataDisk(): Promise<{ exitcode: number; sha256: string; out: string }> {
  return readGuestOverwrite((await inGuest(guestOverwriteScript('/dev/vdb', WRITE / MiB))).out);
}

async function hostSha256OfWritten(): Promise<string> {
  return imageStartSha256(dataDisk, WRITE / MiB);
}

async function assertNoCaptureLeft(): Promise<void> {
  assert.deepEqual((await queryBlockJobs(monitor)).map((j) => j.id), []);
  assert.deepEqual((await queryBlockExports(monitor)).map((e) => e.id), []);
  const ours = (await queryNamedBlockNodes(monitor)).filter((n) => /^coffer-(fleece|cbw)-/.test(n.nodeName ?? ''));
  assert.deepEqual(ours.map((n) => n.nodeName), []);
}

function failedWriteError(error: unknown): boolean {
  assert.ok(error instanceof CofferError, `a CofferError, got ${String(error)}`);
  assert.equal(error.code, 'E_NO_SPACE', error.message);
  assert.match(error.message, /a write of the VM to its disk data-dev failed while the backup held its point-in-time view/);
  assert.match(error.message, /QEMU paused the VM on it/);
  return true;
}

function options(scratchDir: string, extra: Partial<QemuSourceOptions> = {}): QemuSourceOptions {
  return { vm: 'writer', qmp: { path: guest.vm.qmpSocket }, scratchDir, scratchMinFreeBytes: MiB, scratchPollMs: NEVER_MS, guestAgent: { freeze: false }, ...extra };
}

test('a guest write failed by a full scratch while the backup reads: the VM is resumed, the write lands, the backup fails', async () => {
  const scratch = await smallFilesystem('scratch-reading', 4 * MiB);
  const source = await openQemuSource(options(scratch));
  try {
    const wrote = await guestOverwritesDataDisk();
    assert.equal(wrote.exitcode, 0, `the guest's dd saw no error:\n${wrote.out}`);
    assert.equal((await queryStatus(monitor)).status, 'running');
    assert.equal(await hostSha256OfWritten(), wrote.sha256, 'the disk holds what the guest wrote');
    await assert.rejects(backupVm(repo, source), failedWriteError);
  } finally {
    await source.close();
  }
  assert.deepEqual(await listSnapshots(repo, { vm: 'writer' }), []);
  await assertNoCaptureLeft();
  assert.deepEqual(await fs.readdir(scratch), [], 'the scratch folder is emptied');
});

test('a guest write failed while the capture is still starting: the start fails with it, the VM runs on, nothing is left', async () => {
  const scratch = await smallFilesystem('scratch-starting', 4 * MiB);
  let wrote: Awaited<ReturnType<typeof guestOverwritesDataDisk>> | undefined;
  await assert.rejects(openQemuSource(options(scratch, { hooks: { afterCapture: async () => {
    wrote = await guestOverwritesDataDisk();
  } } })), failedWriteError);
  assert.ok(wrote);
  assert.equal(wrote.exitcode, 0, `the guest's dd saw no error:\n${wrote.out}`);
  assert.equal((await queryStatus(monitor)).status, 'running');
  assert.equal(await hostSha256OfWritten(), wrote.sha256);
  await assertNoCaptureLeft();
  // The next backup, with room, is the disk as the guest left it.
  const source = await openQemuSource(options(work, { scratchMinFreeBytes: MiB }));
  try {
    const data = source.disks.find((d) => d.name === 'data-dev');
    assert.ok(data);
    const bytes = Buffer.from(await data.device.read(0, WRITE));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), wrote.sha256);
  } finally {
    await source.close();
  }
});

test('a VM paused on a write the fleecing of a killed run failed is resumed by the next run', async () => {
  // What a run killed with SIGKILL mid-capture leaves: its overlay on a full scratch filesystem and its job.
  const scratch = await smallFilesystem('scratch-killed', 2 * MiB);
  const overlay = path.join(scratch, 'fleece-1.qcow2');
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', overlay, String(DATA_DISK)]);
  await blockdevAdd(monitor, fleecingOverlayOptions('coffer-fleece-dead00-1', { filename: overlay, backingNode: 'data' }));
  await blockdevBackup(monitor, { jobId: 'coffer-job-dead00-1', device: 'data', target: 'coffer-fleece-dead00-1', sync: 'none' });
  const writing = guestOverwritesDataDisk();
  const deadline = Date.now() + 60_000;
  while ((await queryStatus(monitor)).status !== 'io-error') {
    assert.ok(Date.now() < deadline, 'the guest write fails and QEMU pauses the VM');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // The next run clears what the killed one left, and the VM runs again before it captures.
  const source = await openQemuSource(options(work));
  try {
    const wrote = await writing;
    assert.equal(wrote.exitcode, 0, `the guest's dd saw no error:\n${wrote.out}`);
    assert.equal(await hostSha256OfWritten(), wrote.sha256);
    const snapshot = await backupVm(repo, source);
    assert.equal(snapshot.vm, 'writer');
  } finally {
    await source.close();
  }
  assert.equal((await queryStatus(monitor)).status, 'running');
  await assertNoCaptureLeft();
});
