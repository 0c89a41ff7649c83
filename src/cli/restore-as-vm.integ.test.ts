/**
 * `coffer restore SNAPSHOT --as-vm NAME --to DIR`: a clone on demand, proved end to end.
 * - QEMU: a real guest (SYSLINUX, Debian kernel, busybox; shared/notes/bootable-test-disk.md)
 *   boots under TCG with a NIC and a QMP socket, is backed up live (`coffer backup --qemu`),
 *   restored as `clone`, and DIR/clone.sh boots it: the mark shows on the clone's serial
 *   console, and its own QMP monitor reports the new name and UUID and `info network` the new
 *   MAC, none equal to the original's.
 * - libvirt: a snapshot carrying a domain XML from the real libvirt (the test driver) is
 *   restored as a new domain and `--define --connect test:///default` registers it.
 * - A snapshot without a definition, and a bad name, are one-line usage errors (exit 2).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { backupVm } from '../backup/index.js';
import { humanMonitorCommand, QmpClient } from '../qmp/index.js';
import { LocalBackend, openRepository } from '../repo/index.js';
import { openImageSource } from '../source/index.js';
import { BOOT_MARK, buildBootDisk, requireTools, startTestVm, type TestVm } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, runTool, waitFor } from './cli-harness.js';

const execFileAsync = promisify(execFile);
const env = { COFFER_PASSWORD: 'as-vm' };
const ORIGINAL_UUID = '11111111-2222-3333-4444-555555555555';
const ORIGINAL_MAC = '52:54:00:12:34:56';
const BOOT_TIMEOUT_MS = 60_000;
let work: string;
let repo: string;
let bootDisk: string;
let original: TestVm | undefined;
const children: ChildProcess[] = [];

before(async () => {
  await requireTools('qemu-system-x86_64', 'qemu-img', 'virsh');
  work = await makeWorkDir('as-vm');
  repo = join(work, 'repo');
  bootDisk = await buildBootDisk();
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
});
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await original?.stop();
  await removeDir(work);
});

/** True once a line starting with the mark shows in the serial log. */
async function booted(log: string, stop: () => boolean): Promise<boolean> {
  return waitFor(async () => new RegExp(`^${BOOT_MARK} `, 'm').test(await readFile(log, 'latin1').catch(() => '')), { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 100, stop });
}

interface AsVmJson {
  snapshot: string;
  vm: { name: string; uuid: string; kind: string; definition: string; defined: boolean; macs: { from?: string; to: string }[]; disks: { disk: string; path: string }[]; notes: string[] };
}

test('a live QEMU backup restored as a new VM boots from its script, with a new name, UUID and MAC', async () => {
  const qcow2 = join(work, 'boot.qcow2');
  assert.equal((await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', bootDisk, qcow2])).code, 0);
  const originalLog = join(work, 'original.log');
  original = await startTestVm({
    disks: [{ name: 'disk0', size: 32 << 20, format: 'qcow2', from: qcow2 }],
    memoryMiB: 256,
    extraArgs: [
      '-name', 'web01', '-uuid', ORIGINAL_UUID, '-no-shutdown',
      '-netdev', 'user,id=n0', '-device', `virtio-net-pci,id=nic0,netdev=n0,mac=${ORIGINAL_MAC}`,
      '-serial', `file:${originalLog}`,
    ],
  });
  assert.ok(await booted(originalLog, () => false), `the original booted:\n${await readFile(originalLog, 'latin1').catch(() => '')}`);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'web01', '--qemu', original.qmpSocket], { env, timeoutMs: 120_000 }), 0);
  await original.stop();

  const dir = join(work, 'clone');
  const result = await cofferJson<AsVmJson>(['restore', '-r', repo, 'web01:latest', '--as-vm', 'clone', '--to', dir, '--format', 'qcow2'], { env, timeoutMs: 120_000 });
  assert.equal(result.vm.kind, 'qemu-script');
  assert.equal(result.vm.definition, join(dir, 'clone.sh'));
  assert.deepEqual(result.vm.disks.map((d) => d.path), [join(dir, 'clone-disk0-dev.qcow2')]);
  assert.notEqual(result.vm.uuid, ORIGINAL_UUID);
  assert.equal(result.vm.macs.length, 1);
  assert.equal(result.vm.macs[0]?.from, ORIGINAL_MAC);
  assert.match(result.vm.macs[0]?.to ?? '', /^52:54:00(:[0-9a-f]{2}){3}$/);
  assert.notEqual(result.vm.macs[0]?.to, ORIGINAL_MAC);
  const script = await readFile(result.vm.definition, 'utf8');
  assert.match(script, /^#!\/bin\/sh\n/);
  assert.match(script, /not reproduced/i);
  assert.ok(!script.includes(ORIGINAL_UUID), 'the original UUID is not in the script');
  assert.ok(!script.includes(`mac=${ORIGINAL_MAC}`), 'the original MAC is not given to the clone (it is quoted in a comment only)');

  const cloneLog = join(work, 'clone.log');
  const qmpSocket = join(work, 'clone.qmp');
  const clone = spawn(result.vm.definition, ['-display', 'none', '-serial', `file:${cloneLog}`, '-no-shutdown', '-machine', 'accel=tcg', '-qmp', `unix:${qmpSocket},server=on,wait=off`], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(clone);
  let stderr = '';
  clone.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const gone = (): boolean => clone.exitCode !== null || clone.signalCode !== null;
  assert.ok(await booted(cloneLog, gone), `the clone booted from its restored disk:\n${await readFile(cloneLog, 'latin1').catch(() => '')}\n${stderr}\n${script}`);
  const qmp = await QmpClient.connect({ path: qmpSocket });
  try {
    assert.deepEqual(await qmp.execute('query-uuid'), { UUID: result.vm.uuid });
    assert.deepEqual(await qmp.execute('query-name'), { name: 'clone' });
    const network = await humanMonitorCommand(qmp, 'info network');
    assert.ok(network.includes(`macaddr=${result.vm.macs[0]?.to}`), network);
    assert.ok(!network.includes(ORIGINAL_MAC), network);
    const blocks = JSON.stringify(await qmp.execute('query-block'));
    assert.ok(blocks.includes(join(dir, 'clone-disk0-dev.qcow2')), 'the clone runs on its restored image');
  } finally {
    await qmp.close();
    clone.kill('SIGKILL');
  }
});

test('a libvirt definition restored as a new domain and defined in the real libvirt (test driver)', async () => {
  const { stdout } = await execFileAsync('virsh', ['-c', 'test:///default', 'dumpxml', 'test'], { timeout: 60_000 });
  const backend = new LocalBackend(repo);
  const repository = await openRepository(backend, { passphrase: env.COFFER_PASSWORD, threads: 1 });
  try {
    const disk = join(work, 'vda.raw');
    await writeFile(disk, Buffer.alloc(1 << 20, 0x5a));
    const images = await openImageSource('libvirt-test', [disk]);
    const source = { ...images, vm: 'libvirt-test', disks: images.disks.map((d) => ({ ...d, name: 'vda' })), definition: { format: 'libvirt-xml', data: Buffer.from(stdout) }, close: () => images.close() };
    try {
      await backupVm(repository, source);
    } finally {
      await images.close();
    }
  } finally {
    await repository.close();
  }
  const dir = join(work, 'lv');
  const result = await cofferJson<AsVmJson>(['restore', '-r', repo, 'libvirt-test:latest', '--as-vm', 'lvclone', '--to', dir, '--define', '--connect', 'test:///default'], { env });
  assert.equal(result.vm.kind, 'libvirt-xml');
  assert.equal(result.vm.defined, true);
  const xml = await readFile(join(dir, 'lvclone.xml'), 'utf8');
  assert.match(xml, /<name>lvclone<\/name>/);
  assert.ok(xml.includes(`<uuid>${result.vm.uuid}</uuid>`) && xml.includes(`<source file='${join(dir, 'lvclone-vda.raw')}'/>`));
  assert.ok((await readFile(join(dir, 'lvclone-vda.raw'))).equals(Buffer.alloc(1 << 20, 0x5a)), 'the disk is restored beside it');
});

test('a snapshot without a definition, a bad name, or --define for a QEMU VM: one-line usage errors', async () => {
  const disk = join(work, 'plain.raw');
  await writeFile(disk, Buffer.alloc(1 << 20, 1));
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'plain', disk], { env }), 0);
  const none = await coffer(['restore', '-r', repo, 'plain:latest', '--as-vm', 'x', '--to', join(work, 'x')], { env });
  assertExit(none, 2);
  assert.match(assertOneLineError(none), /stores no VM definition/);
  const badName = await coffer(['restore', '-r', repo, 'plain:latest', '--as-vm', '../evil', '--to', join(work, 'x')], { env });
  assertExit(badName, 2);
  assert.match(assertOneLineError(badName), /a VM name is/);
  const define = await coffer(['restore', '-r', repo, 'web01:latest', '--as-vm', 'y', '--to', join(work, 'y'), '--define'], { env });
  assertExit(define, 2);
  assert.match(assertOneLineError(define), /--define registers a libvirt domain/);
});
