/**
 * `coffer restore --to-vm QMP --to DIR`: a VM running from `coffer serve` (instant recovery)
 * moves onto local images while it runs, then the export ends and the VM goes on.
 * A real QEMU (TCG, no guest OS) attaches the real export two ways: a `-blockdev` nbd node
 * under a qcow2 overlay that takes the guest's writes, and `-drive …,snapshot=on`; a third,
 * local disk must be left alone. After the move `coffer serve` is stopped, the VM still runs
 * and reads the backup's data and its own earlier write from the local file, a write after
 * the move lands there, and with QEMU stopped `qemu-img compare` proves each image equals
 * the snapshot plus the guest's writes.
 */
import assert from 'node:assert/strict';
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { qemuIo, QmpClient } from '../qmp/index.js';
import { requireTools, startTestVm, type TestVm } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, runTool, startCofferUntil, type RunningCoffer } from './cli-harness.js';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const env = { COFFER_PASSWORD: 'to-vm' };
let work: string;
let repo: string;
let original: string;
let vm: TestVm | undefined;
let server: RunningCoffer | undefined;

/** qemu-io on a raw file (the model of what each disk must hold). */
async function write(file: string, command: string): Promise<void> {
  const r = await runTool('qemu-io', ['-f', 'raw', '-c', command, file]);
  assert.equal(r.code, 0, r.stderr);
}

before(async () => {
  await requireTools('qemu-system-x86_64', 'qemu-img', 'qemu-io');
  work = await makeWorkDir('to-vm');
  repo = join(work, 'repo');
  original = join(work, 'disk0.raw');
  assert.equal((await runTool('qemu-img', ['create', '-q', '-f', 'raw', original, String(SIZE)])).code, 0);
  await write(original, 'write -P 0x33 4M 1M');
  await write(original, 'write -P 0x44 20M 2M');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'web01', original], { env }), 0);
});
after(async () => {
  await vm?.stop();
  if (server && server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  await server?.done.catch(() => undefined);
  await removeDir(work);
});

async function serve(socket: string): Promise<RunningCoffer> {
  return startCofferUntil(['serve', '-r', repo, 'web01:latest', '--socket', socket], 'nbd', { env, timeoutMs: 300_000 });
}

/** HMP qemu-io read with a pattern; qemu-io prints its verdict on QEMU's stdout. */
async function assertReads(qmp: QmpClient, device: string, command: string): Promise<void> {
  const before = vm?.output().length ?? 0;
  await qemuIo(qmp, { device, command });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const printed = vm?.output().slice(before) ?? '';
  assert.match(printed, /read \d+\/\d+ bytes/, `${device}: ${command}\n${printed}`);
  assert.doesNotMatch(printed, /Pattern verification failed|error/i, `${device}: ${command}\n${printed}`);
}

test('a VM running from the export moves onto local images while it runs; the export then ends and the VM goes on', async () => {
  const socket = join(work, 'serve.sock');
  server = await serve(socket);
  const overlay = join(work, 'overlay.qcow2');
  const uri = `nbd+unix:///disk0?socket=${socket}`;
  assert.equal((await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', uri, '-F', 'raw', overlay, String(SIZE)])).code, 0);
  vm = await startTestVm({
    disks: [{ name: 'local0', size: 4 * MiB }],
    extraArgs: [
      '-blockdev', `driver=nbd,server.type=unix,server.path=${socket},export=disk0,node-name=export0,read-only=on`,
      '-blockdev', `driver=qcow2,node-name=cow0,file.driver=file,file.filename=${overlay},backing=export0`,
      '-device', 'scsi-hd,id=sda,drive=cow0',
      '-drive', `file=${uri},format=raw,if=none,id=snap1,snapshot=on`,
      '-device', 'scsi-hd,id=sdb,drive=snap1',
      '-qmp', `unix:${join(work, 'test.qmp')},server=on,wait=off`, // the test's own monitor: the first is Coffer's
    ],
  });
  const qmp = await QmpClient.connect({ path: join(work, 'test.qmp') });
  try {
    await qemuIo(qmp, { device: 'sda', command: 'write -P 0x5a 1M 64k' });
    const target = join(work, 'local');
    const report = await cofferJson<{ disks: { disk: string; path: string; from: string[] }[]; stillOpen: string[] }>(['restore', '--to-vm', vm.qmpSocket, '--to', target], { timeoutMs: 120_000 });
    assert.deepEqual(report.disks.map((d) => [d.disk, d.path]).sort(), [['sda', join(target, 'sda.qcow2')], ['sdb', join(target, 'sdb.qcow2')]]);
    assert.ok(report.disks.every((d) => d.from.length === 1 && d.from[0]?.startsWith('nbd+unix:')), JSON.stringify(report));
    assert.deepEqual(report.stillOpen, []);

    server.child.kill('SIGTERM');
    assert.equal((await server.done).code, 0, 'coffer serve stops: no client holds it');
    assert.deepEqual(await qmp.execute('query-status'), { status: 'running', singlestep: false, running: true });
    const blocks = JSON.stringify(await qmp.execute('query-block'));
    assert.ok(blocks.includes(join(target, 'sda.qcow2')) && blocks.includes(join(target, 'sdb.qcow2')), blocks);
    assert.ok(!blocks.includes(socket), `no disk refers to the export any more: ${blocks}`);
    assert.ok(blocks.includes(join(vm.dir, 'local0.qcow2')), 'the local disk is untouched');
    await assertReads(qmp, 'sda', 'read -P 0x33 4M 1M');
    await assertReads(qmp, 'sda', 'read -P 0x5a 1M 64k');
    await assertReads(qmp, 'sdb', 'read -P 0x44 20M 2M');
    await qemuIo(qmp, { device: 'sda', command: 'write -P 0x77 8M 64k' });
    // A clean quit, so QEMU writes its cached qcow2 metadata (stop() kills with SIGKILL).
    await qmp.execute('quit').catch(() => undefined);
    await vm.exited;
  } finally {
    await qmp.close();
    await vm.stop();
  }
  const expectA = join(work, 'expect-sda.raw');
  await copyFile(original, expectA);
  await write(expectA, 'write -P 0x5a 1M 64k');
  await write(expectA, 'write -P 0x77 8M 64k');
  for (const [image, expected] of [['sda.qcow2', expectA], ['sdb.qcow2', original]] as const) {
    const r = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', expected, join(work, 'local', image)]);
    assert.equal(r.code, 0, `${image}: ${r.stdout}${r.stderr}`);
  }
  const info = await runTool('qemu-img', ['info', join(work, 'local', 'sda.qcow2')]);
  assert.doesNotMatch(info.stdout, /backing file/, 'the local image stands alone');
});

test('a VM with no disk on an export, and a dead monitor: one-line errors, nothing written', async () => {
  const plain = await startTestVm({ disks: [{ name: 'disk0', size: 4 * MiB }] });
  try {
    const target = join(work, 'none');
    const none = await coffer(['restore', '--to-vm', plain.qmpSocket, '--to', target]);
    assertExit(none, 2);
    assert.match(assertOneLineError(none), /no disk of the VM .* reads from an NBD export/);
    assert.deepEqual(await readdir(target).catch(() => []), []);
  } finally {
    await plain.stop();
  }
  const dead = await coffer(['restore', '--to-vm', join(work, 'no-such.qmp'), '--to', join(work, 'dead')]);
  assertExit(dead, 3);
  assertOneLineError(dead);
  const both = await coffer(['restore', 'web01:latest', '--to-vm', join(work, 'x.qmp'), '--to', join(work, 'x')]);
  assertExit(both, 2);
  assert.match(assertOneLineError(both), /name no snapshot/);
});
