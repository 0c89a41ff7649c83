/**
 * moveToLocalStorage against a real QEMU (TCG, no guest) whose disk is a real NBD export
 * (qemu-nbd) under a qcow2 overlay: an interrupted move and a move whose export stalls both
 * leave the VM exactly on the export (no job, no new node, no new file), and a move after
 * them still succeeds, its image equal to the export plus the guest's write.
 */
import assert from 'node:assert/strict';
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { queryBlock, queryJobs, queryNamedBlockNodes, qemuIo, QmpClient } from '../qmp/index.js';
import { makeTempDir, requireTools, runTool, startDaemon, startTestVm, type Daemon, type TestVm } from '../testing/index.js';
import { moveToLocalStorage } from './index.js';

const MiB = 1024 * 1024;
const SIZE = 128 * MiB;
let work: { path: string; remove(): Promise<void> };
let base: string;
let nbd: Daemon;
let vm: TestVm;
let qmp: QmpClient;

before(async () => {
  await requireTools('qemu-system-x86_64', 'qemu-img', 'qemu-io', 'qemu-nbd');
  work = await makeTempDir('coffer-relocate');
  base = join(work.path, 'base.raw');
  await runTool('qemu-img', ['create', '-q', '-f', 'raw', base, String(SIZE)]);
  await runTool('qemu-io', ['-f', 'raw', '-c', `write -P 0x61 0 ${SIZE}`, base]); // all data: the mirror has to copy it all
  const socket = join(work.path, 'nbd.sock');
  nbd = await startDaemon('qemu-nbd', ['-r', '-t', '-e', '4', '-x', 'disk0', '-k', socket, '-f', 'raw', base], socket);
  const overlay = join(work.path, 'overlay.qcow2');
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', `nbd+unix:///disk0?socket=${socket}`, '-F', 'raw', overlay, String(SIZE)]);
  vm = await startTestVm({
    disks: [],
    extraArgs: [
      '-blockdev', `driver=nbd,server.type=unix,server.path=${socket},export=disk0,node-name=export0,read-only=on`,
      '-blockdev', `driver=qcow2,node-name=cow0,file.driver=file,file.filename=${overlay},backing=export0`,
      '-device', 'scsi-hd,id=sda,drive=cow0',
    ],
  });
  qmp = await QmpClient.connect({ path: vm.qmpSocket });
  await qemuIo(qmp, { device: 'sda', command: 'write -P 0x5a 1M 64k' });
});
after(async () => {
  await qmp?.close();
  await vm?.stop();
  await nbd?.stop();
  await work?.remove();
});

/** The VM is as before any move: sda on the overlay, no job, no node or file of ours. */
async function assertUntouched(dir: string): Promise<void> {
  const drives = await queryBlock(qmp);
  assert.equal(drives.find((d) => d.qdev === 'sda')?.inserted?.nodeName, 'cow0', 'the VM still runs on the export');
  assert.deepEqual(await queryJobs(qmp), [], 'no job is left');
  const ours = (await queryNamedBlockNodes(qmp)).filter((n) => n.nodeName?.startsWith('coffer-'));
  assert.deepEqual(ours, [], 'no node of the move is left');
  assert.deepEqual(await readdir(dir).catch(() => []), [], 'no image is left');
}

test('an interrupted move cancels every job and leaves the VM on the export', async () => {
  const dir = join(work.path, 'interrupted');
  const abort = new AbortController();
  await assert.rejects(
    moveToLocalStorage(qmp, { dir, signal: abort.signal, pollIntervalMs: 20, onProgress: () => abort.abort() }),
    (e) => isCofferError(e, 'E_INTERRUPTED') && /still runs on the export, nothing was moved/.test(e.message),
  );
  await assertUntouched(dir);
});

test('a move whose export stops answering fails at the deadline and leaves the VM on the export', async () => {
  const dir = join(work.path, 'stalled');
  let resumed: Promise<void> | undefined;
  const stall = (): void => {
    if (resumed) return;
    nbd.child.kill('SIGSTOP');
    // Resumed later, so the cancelled mirror's requests in flight can end.
    resumed = new Promise((resolve) => setTimeout(() => resolve(void nbd.child.kill('SIGCONT')), 4000));
  };
  try {
    await assert.rejects(
      moveToLocalStorage(qmp, { dir, stallTimeoutMs: 1500, pollIntervalMs: 50, onProgress: stall }),
      (e) => isCofferError(e, 'E_TIMEOUT') && /no progress for 2 s while copying .*; the VM still runs on the export/.test(e.message),
    );
  } finally {
    await resumed;
    nbd.child.kill('SIGCONT');
  }
  await assertUntouched(dir);
});

test('after the failures, a move succeeds: the image holds the export plus the guest\'s write, and stands alone', async () => {
  const dir = join(work.path, 'moved');
  const seen: boolean[] = [];
  const report = await moveToLocalStorage(qmp, { dir, format: 'raw', onProgress: (p) => seen.push(p.ready) });
  assert.deepEqual(report.disks.map((d) => [d.disk, d.path, d.size]), [['sda', join(dir, 'sda.raw'), SIZE]]);
  assert.deepEqual(report.stillOpen, []);
  assert.ok(seen.includes(true), 'progress reached ready');
  assert.equal((await queryBlock(qmp)).find((d) => d.qdev === 'sda')?.inserted?.filename, join(dir, 'sda.raw'));
  assert.ok(!(await queryNamedBlockNodes(qmp)).some((n) => n.nodeName === 'cow0' || n.nodeName === 'export0'), 'the old nodes are gone');
  await qmp.execute('quit').catch(() => undefined);
  await vm.exited;
  const expected = join(work.path, 'expected.raw');
  await copyFile(base, expected);
  await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 1M 64k', expected]);
  await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', expected, join(dir, 'sda.raw')]);
});
