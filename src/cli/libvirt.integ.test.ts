/**
 * `coffer backup --libvirt DOMAIN --connect URI` on a running domain of a private libvirtd
 * (TCG, no guest OS): a full backup and an incremental, each restored by `coffer restore`
 * equal to the domain's image (`qemu-img compare -U` against the live qcow2, no write between
 * the backup and the compare) and to a model of the writes; `--vm` defaults to the domain's
 * name; hooks run around backup-begin, and a failing pre hook leaves no job and no checkpoint;
 * an unknown or stopped domain, an unreachable libvirt and misused options give one line and
 * their exit codes.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestLibvirt, type TestDomain, type TestLibvirt } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, runTool, type BackupJson } from './cli-harness.js';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const DOMAIN = 'coffer-cli-db01';
const env = { COFFER_PASSWORD: 'libvirt cli' };
let libvirt: TestLibvirt;
let domain: TestDomain;
let work: string;
let repo: string;
const model = Buffer.alloc(SIZE);

before(async () => {
  work = await makeWorkDir('libvirt');
  repo = join(work, 'repo');
  libvirt = await startTestLibvirt();
  domain = await libvirt.startDomain({ name: DOMAIN, disks: [{ target: 'vda', size: SIZE }] });
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
});
after(async () => {
  await libvirt?.stop();
  await removeDir(work);
});

async function write(offset: number, length: number, pattern: number): Promise<void> {
  await domain.write('vda', offset, length, pattern);
  model.fill(pattern, offset, offset + length);
}

async function assertRestoresToDomainImage(id: string): Promise<void> {
  const out = join(work, `${id}.raw`);
  assertExit(await coffer(['restore', '-r', repo, id, '--to', out], { env }), 0);
  assert.ok((await readFile(out)).equals(model), 'the restored disk equals the disk at the backup\'s instant');
  const image = domain.disks[0]?.path as string;
  const compare = await runTool('qemu-img', ['compare', '-U', '-f', 'raw', '-F', 'qcow2', out, image]);
  assert.equal(compare.code, 0, `qemu-img compare: ${compare.stdout}${compare.stderr}`);
  await removeDir(out);
}

interface LibvirtBackupJson extends BackupJson {
  disks: { name: string; changeTracking?: { method: string; reason?: string; checkpoint?: string } }[];
}

test('a full backup, then an incremental that reads only the ranges the guest wrote', async () => {
  await write(2 * MiB, 1 * MiB, 0x11);
  const base = ['backup', '-r', repo, '--libvirt', DOMAIN, '--connect', libvirt.uri];
  const full = await cofferJson<LibvirtBackupJson>(base, { env, timeoutMs: 120_000 });
  assert.equal(full.vm, DOMAIN, '--vm defaults to the domain name');
  assert.equal(full.bytesRead, 1 * MiB);
  assert.deepEqual(full.disks.map((d) => d.name), ['vda']);
  assert.match(full.disks[0]?.changeTracking?.reason ?? '', /no checkpoint/);
  await assertRestoresToDomainImage(full.id);

  await write(20 * MiB, 4096, 0x22);
  await write(30 * MiB, 4096, 0x33);
  const incremental = await cofferJson<LibvirtBackupJson>(base, { env, timeoutMs: 120_000 });
  assert.equal(incremental.parent, full.id);
  assert.equal(incremental.disks[0]?.changeTracking?.method, 'dirty-bitmap');
  assert.equal(incremental.bytesRead, 2 * 64 * 1024, 'two dirty 64 KiB granules read, nothing else');
  await assertRestoresToDomainImage(incremental.id);

  await write(21 * MiB, 4096, 0x23);
  const text = await coffer(base, { env, timeoutMs: 120_000 });
  assertExit(text, 0);
  assert.match(text.stdout.toString('utf8'), /vm coffer-cli-db01: 1 disk\(s\)/);
  assert.match(text.stdout.toString('utf8'), /vda: read only what the libvirt checkpoint marked since the last backup/);
  const checkpoints = (await libvirt.virsh('checkpoint-list', '--name', DOMAIN)).trim().split('\n');
  assert.equal(checkpoints.length, 1, 'one checkpoint left on the domain');
});

test('an unknown domain, an unreachable libvirt and misused options give one line and their exit codes', async () => {
  const unknown = await coffer(['backup', '-r', repo, '--libvirt', 'no-such-domain', '--connect', libvirt.uri], { env });
  assertExit(unknown, 2);
  assert.match(assertOneLineError(unknown), /no such domain/);
  const unreachable = await coffer(['backup', '-r', repo, '--libvirt', DOMAIN, '--connect', `qemu+unix:///session?socket=${join(work, 'nothing.sock')}`], { env });
  assertExit(unreachable, 3);
  assert.match(assertOneLineError(unreachable), /cannot reach libvirt/);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'x', '--connect', libvirt.uri, '/some/disk.raw'], { env }), 2);
  assertExit(await coffer(['backup', '-r', repo, '--libvirt', DOMAIN, '/some/disk.raw'], { env }), 2);
});

test('hooks run around the capture; a failing pre hook stops the backup and leaves no job and no checkpoint', async () => {
  const log = join(work, 'hooks.log');
  await writeFile(log, '');
  const base = ['backup', '-r', repo, '--libvirt', DOMAIN, '--connect', libvirt.uri];
  const before = await libvirt.virsh('checkpoint-list', '--name', DOMAIN);
  const refused = await coffer([...base, '--pre-capture', `echo pre >> ${log}; exit 7`, '--post-capture', `echo "post $COFFER_VM" >> ${log}`], { env, timeoutMs: 120_000 });
  assertExit(refused, 3);
  assertOneLineError(refused);
  assert.equal(await readFile(log, 'utf8'), `pre\npost ${DOMAIN}\n`, 'the post hook ran after the failed pre hook');
  assert.equal(await libvirt.virsh('checkpoint-list', '--name', DOMAIN), before, 'no checkpoint added');
  await assert.rejects(libvirt.virsh('backup-dumpxml', DOMAIN), /no domain backup job/);

  await write(5 * MiB, 4096, 0x44);
  await writeFile(log, '');
  const done = await cofferJson<LibvirtBackupJson>([...base, '--pre-capture', `echo pre >> ${log}`, '--post-capture', `echo post >> ${log}`], { env, timeoutMs: 120_000 });
  assert.equal(await readFile(log, 'utf8'), 'pre\npost\n');
  assert.equal(done.disks[0]?.changeTracking?.method, 'dirty-bitmap', 'the refused run lost no change');
  await assertRestoresToDomainImage(done.id);
});

test('a stopped domain gives one line and exit code 3', async () => {
  await libvirt.virsh('destroy', DOMAIN);
  const stopped = await coffer(['backup', '-r', repo, '--libvirt', DOMAIN, '--connect', libvirt.uri], { env });
  assertExit(stopped, 3);
  assert.match(assertOneLineError(stopped), /is not running \(shut off\)/);
});
