/**
 * `coffer backup --libvirt DOMAIN --connect URI` on a running domain of a private libvirtd
 * (TCG, no guest OS): a full backup and an incremental, each restored by `coffer restore`
 * equal to the domain's image (`qemu-img compare -U` against the live qcow2, no write between
 * the backup and the compare) and to a model of the writes; `--vm` defaults to the domain's
 * name; hooks run around backup-begin, and a failing pre hook leaves no job and no checkpoint;
 * an unknown or stopped domain, an unreachable libvirt and misused options give one line and
 * their exit codes. A domain on UEFI (Debian's OVMF) whose disk only UEFI boots: its variable
 * store (`<nvram>`, a file outside its disks) is backed up as the disk `nvram` equal to the
 * file, `test-restore --boot` gives it back to the firmware, and `restore --as-vm` writes it
 * raw and points the clone's `<nvram>` at it (defined in the same libvirtd).
 */
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TestRestoreReport } from '../restore/index.js';
import { buildUefiBootDisk, startTestLibvirt, TEST_OVMF, UEFI_BOOT_MARK, type TestDomain, type TestLibvirt } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, runTool, waitFor, type BackupJson } from './cli-harness.js';

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

test("a domain on UEFI: its variable store is backed up with its disk, its boot check boots from it, its clone is defined on the restored one", async () => {
  await stat(TEST_OVMF.code); // .ci/run installs ovmf
  const disk = await buildUefiBootDisk();
  const name = 'coffer-cli-efi01';
  const efi = await libvirt.startDomain({ name, uefi: true, disks: [{ target: 'vda', size: (await stat(disk)).size, format: 'raw', from: disk }] });
  // Its first boot: OVMF writes its boot entries into the store, the guest prints the mark and powers off.
  const off = await waitFor(async () => (await libvirt.virsh('domstate', name)).trim() === 'shut off', { timeoutMs: 150_000, intervalMs: 250 });
  assert.ok(off && (await efi.console()).includes(UEFI_BOOT_MARK), `the domain booted through UEFI:\n${await efi.console()}`);
  const nvram = await readFile(efi.nvram as string);
  assert.ok(!nvram.equals(await readFile(TEST_OVMF.varsTemplate)), 'the firmware wrote to its store');
  await libvirt.virsh('start', '--paused', name); // live backup needs it running; paused, nothing changes the store

  const backup = await cofferJson<LibvirtBackupJson>(['backup', '-r', repo, '--libvirt', name, '--connect', libvirt.uri, '--no-freeze'], { env, timeoutMs: 120_000 });
  assert.deepEqual(backup.disks.map((d) => [d.name, d.changeTracking?.method]), [['vda', 'none'], ['nvram', 'none']]);
  assert.match(backup.disks[1]?.changeTracking?.reason ?? '', /UEFI variable store .* read whole/);
  const copy = join(work, 'nvram.fd');
  assertExit(await coffer(['restore', '-r', repo, backup.id, '--disk', 'nvram', '--to', copy], { env }), 0);
  assert.ok((await readFile(copy)).equals(nvram), 'the snapshot holds the store byte for byte');

  const result = await coffer(['test-restore', '-r', repo, '--json', backup.id, '--no-fsck', '--boot', '--accel', 'tcg', '--boot-timeout', '150', '--boot-expect', UEFI_BOOT_MARK], { env, timeoutMs: 300_000 });
  assertExit(result, 0);
  const report = JSON.parse(result.stdout.toString('utf8')) as TestRestoreReport;
  assert.equal(report.boot?.passed, true, `${report.boot?.reason}\n${report.boot?.serialTail}`);
  assert.deepEqual([report.boot?.firmware?.kind, report.boot?.firmware?.varsFromBackup, report.boot?.firmware?.code], ['uefi', true, TEST_OVMF.code]);
  assert.match(report.boot?.firmware?.why ?? '', /the VM's definition, with its UEFI variable store from the backup/);

  // Restored as a new domain: the store raw whatever --format, named by <nvram>, never a <disk>.
  const dir = join(work, 'efi-clone');
  const restored = await cofferJson<{ vm: { definition: string; defined: boolean; disks: { disk: string; path: string }[]; notes: string[] } }>(
    ['restore', '-r', repo, backup.id, '--as-vm', 'efi-clone', '--to', dir, '--format', 'qcow2', '--define', '--connect', libvirt.uri], { env, timeoutMs: 120_000 });
  const store = join(dir, 'efi-clone-nvram.raw');
  assert.deepEqual(restored.vm.disks.map((d) => [d.disk, d.path]), [['vda', join(dir, 'efi-clone-vda.qcow2')], ['nvram', store]]);
  assert.deepEqual(restored.vm.notes, []);
  assert.ok((await readFile(store)).equals(nvram), 'the restored store is the domain\'s, raw');
  const xml = await readFile(restored.vm.definition, 'utf8');
  assert.ok(xml.includes(`<nvram template='${TEST_OVMF.varsTemplate}'>${store}</nvram>`), xml);
  assert.ok(xml.includes(`<loader readonly='yes' type='pflash'>${TEST_OVMF.code}</loader>`), xml);
  assert.equal((xml.match(/<disk /g) ?? []).length, 1, 'one <disk>: vda');
  assert.equal(restored.vm.defined, true);
  const defined = await libvirt.virsh('dumpxml', '--inactive', 'efi-clone');
  assert.ok(defined.includes(`>${store}</nvram>`), defined);
});

test('a stopped domain gives one line and exit code 3', async () => {
  await libvirt.virsh('destroy', DOMAIN);
  const stopped = await coffer(['backup', '-r', repo, '--libvirt', DOMAIN, '--connect', libvirt.uri], { env });
  assertExit(stopped, 3);
  assert.match(assertOneLineError(stopped), /is not running \(shut off\)/);
});
