/**
 * `coffer test-restore --boot` of VMs that only UEFI firmware boots, under TCG with the host's
 * OVMF found through QEMU's firmware descriptors: a disk image backed up with no definition
 * (UEFI chosen from its EFI System Partition and missing MBR boot code; forced BIOS, the same
 * disk does not boot), and a running QEMU VM on UEFI backed up live, whose variable store
 * (its writable pflash1) is stored with the disks and given back to the firmware when it
 * boots, not attached as a disk, and on the flash of its clone restored as a new VM; with
 * Secure Boot, Secure Boot firmware that refuses the test disk's unsigned boot loader.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TestRestoreReport } from '../restore/index.js';
import { buildUefiBootDisk, requireTools, startTestVm, UEFI_BOOT_MARK } from '../testing/index.js';
import { assertExit, coffer, cofferJson, makeWorkDir, removeDir } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'uefi boot' };
const slow = { env, timeoutMs: 300_000 };
/** Debian's OVMF (package ovmf), the 4 MiB build its descriptor 60-edk2-x86_64.json names. */
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** Its Secure Boot build (40-edk2-x86_64-secure-enrolled.json: SMM, Microsoft's keys enrolled). */
const OVMF_MS_CODE = '/usr/share/OVMF/OVMF_CODE_4M.ms.fd';
const OVMF_MS_VARS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';
const BOOT = ['--boot', '--accel', 'tcg', '--boot-timeout', '150', '--boot-expect', UEFI_BOOT_MARK];
let work: string;
let repo: string;

before(async () => {
  await requireTools('qemu-system-x86_64', 'fsck.fat');
  await fs.access(OVMF_CODE); // .ci/run installs ovmf
  work = await makeWorkDir('test-restore-uefi');
  repo = path.join(work, 'repo');
  assertExit(await coffer(['init', '-r', repo], slow), 0);
});
after(() => removeDir(work));

async function testRestoreJson(reference: string, expectedExit: number, extra: string[]): Promise<TestRestoreReport> {
  const result = await coffer(['test-restore', '-r', repo, '--json', reference, ...extra], slow);
  assertExit(result, expectedExit);
  return JSON.parse(result.stdout.toString('utf8')) as TestRestoreReport;
}

test('a disk only UEFI boots: --boot finds UEFI from its EFI System Partition and boots it through the host\'s OVMF; forced to BIOS it does not boot', async () => {
  const disk = await buildUefiBootDisk();
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'efi-image', disk], slow), 0);
  const good = await testRestoreJson('efi-image:latest', 0, BOOT);
  assert.equal(good.boot?.passed, true, `${good.boot?.reason}\n${good.boot?.serialTail}`);
  assert.equal(good.boot?.firmware?.kind, 'uefi');
  assert.match(good.boot?.firmware?.why ?? '', /EFI System Partition and no MBR boot code/);
  assert.equal(good.boot?.firmware?.code, OVMF_CODE);
  assert.equal(good.boot?.firmware?.varsFromBackup, false);
  assert.deepEqual(good.volumes.map((v) => [v.filesystem, v.files, v.checker?.command, v.checker?.exitCode]), [['fat16', 5, 'fsck.fat -n', 0]], 'the ESP is walked and fsck.fat finds it clean');

  // SeaBIOS runs the protective MBR's empty boot code, which spins: the deadline ends it. (The text report's firmware line: cli/commands/test-restore.test.ts.)
  const bios = await testRestoreJson('efi-image:latest', 15, ['--no-fsck', '--boot', '--accel', 'tcg', '--boot-timeout', '8', '--boot-expect', UEFI_BOOT_MARK, '--boot-firmware', 'bios']);
  assert.equal(bios.boot?.passed, false);
  assert.match(bios.boot?.reason ?? '', /did not appear on the serial console within 8 s/);
  assert.deepEqual([bios.boot?.firmware?.kind, bios.boot?.firmware?.why], ['bios', 'asked (--boot-firmware bios)']);
  assert.doesNotMatch(bios.boot?.serialTail ?? '', new RegExp(UEFI_BOOT_MARK));

  assertExit(await coffer(['test-restore', '-r', repo, 'efi-image:latest', '--boot', '--boot-firmware', 'coreboot'], slow), 2);
});

test('a running QEMU VM on UEFI: live backup stores its variable store with the disks, and the boot check gives it back to the firmware, not as a disk', async () => {
  const disk = await buildUefiBootDisk();
  const vars = path.join(work, 'vm-vars.fd');
  await fs.copyFile(OVMF_VARS, vars);
  const size = (await fs.stat(disk)).size;
  const vm = await startTestVm({
    disks: [{ name: 'disk0', size, format: 'raw', from: disk, bus: 'virtio' }],
    memoryMiB: 256,
    extraArgs: ['-S', '-drive', `if=pflash,unit=0,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,unit=1,format=raw,file=${vars}`],
  });
  try {
    assertExit(await coffer(['backup', '-r', repo, '--vm', 'efi-live', '--qemu', vm.qmpSocket, '--no-freeze'], slow), 0);
  } finally {
    await vm.stop();
  }
  const [snapshot] = await cofferJson<{ disks: { name: string; size: number }[] }[]>(['snapshots', '-r', repo, '--vm', 'efi-live'], slow);
  assert.deepEqual(snapshot?.disks.map((d) => [d.name, d.size]).sort(), [['disk0-dev', size], ['pflash1', (await fs.stat(OVMF_VARS)).size]]);

  const report = await testRestoreJson('efi-live:latest', 0, ['--no-fsck', ...BOOT]);
  assert.equal(report.boot?.passed, true, `${report.boot?.reason}\n${report.boot?.serialTail}`);
  assert.deepEqual([report.boot?.firmware?.kind, report.boot?.firmware?.varsFromBackup, report.boot?.bus], ['uefi', true, 'virtio']);
  assert.match(report.boot?.firmware?.why ?? '', /the VM's definition, with its UEFI variable store from the backup/);

  // Restored as a new VM: its script puts the host's firmware code and the restored store (raw,
  // whatever the disks' format) on the flash, and the clone boots from it.
  const dir = path.join(work, 'clone');
  const restored = await cofferJson<{ vm: { definition: string; disks: { disk: string; path: string }[]; notes: string[] } }>(['restore', '-r', repo, 'efi-live:latest', '--as-vm', 'efi-clone', '--to', dir, '--format', 'qcow2'], slow);
  const varsCopy = path.join(dir, 'efi-clone-pflash1.raw');
  assert.deepEqual(restored.vm.disks.map((d) => d.path).sort(), [path.join(dir, 'efi-clone-disk0-dev.qcow2'), varsCopy]);
  assert.deepEqual(restored.vm.notes.filter((n) => /UEFI|pflash/.test(n)), []);
  const script = await fs.readFile(restored.vm.definition, 'utf8');
  assert.ok(script.includes(`if=pflash,unit=0,format=raw,file=${OVMF_CODE},readonly=on`), script);
  assert.ok(script.includes(`if=pflash,unit=1,format=raw,file=${varsCopy}`), script);
  const log = path.join(work, 'clone.log');
  const clone = spawn(restored.vm.definition, ['-display', 'none', '-serial', `file:${log}`, '-no-reboot', '-machine', 'accel=tcg'], { stdio: 'ignore' });
  try {
    assert.ok(await markIn(log, 150_000), `the clone booted through UEFI:\n${await fs.readFile(log, 'latin1').catch(() => '')}\n${script}`);
  } finally {
    clone.kill('SIGKILL');
  }
});

test('a QEMU VM on UEFI with Secure Boot is booted with Secure Boot firmware and its own keys: the test disk\'s unsigned boot loader is refused', async () => {
  const disk = await buildUefiBootDisk();
  const vars = path.join(work, 'sb-vars.fd');
  await fs.copyFile(OVMF_MS_VARS, vars); // Microsoft's keys enrolled, Secure Boot on
  const size = (await fs.stat(disk)).size;
  const vm = await startTestVm({
    disks: [{ name: 'disk0', size, format: 'raw', from: disk, bus: 'virtio' }],
    memoryMiB: 256,
    extraArgs: ['-S', '-machine', 'smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on', '-drive', `if=pflash,unit=0,format=raw,readonly=on,file=${OVMF_MS_CODE}`, '-drive', `if=pflash,unit=1,format=raw,file=${vars}`],
  });
  try {
    assertExit(await coffer(['backup', '-r', repo, '--vm', 'efi-secure', '--qemu', vm.qmpSocket, '--no-freeze'], slow), 0);
  } finally {
    await vm.stop();
  }
  // The firmware's own refusal is the text waited for: booted without Secure Boot, systemd-boot would run.
  const report = await testRestoreJson('efi-secure:latest', 0, ['--no-fsck', '--boot', '--accel', 'tcg', '--boot-timeout', '150', '--boot-expect', 'Access Denied']);
  assert.equal(report.boot?.passed, true, `${report.boot?.reason}\n${report.boot?.serialTail}`);
  assert.deepEqual([report.boot?.firmware?.kind, report.boot?.firmware?.secureBoot, report.boot?.firmware?.varsFromBackup, report.boot?.firmware?.code], ['uefi', true, true, OVMF_MS_CODE]);
  assert.doesNotMatch(report.boot?.serialTail ?? '', new RegExp(UEFI_BOOT_MARK));
});

/** Whether the guest's mark shows in the serial log within `ms`. */
async function markIn(log: string, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 500))) {
    if ((await fs.readFile(log, 'latin1').catch(() => '')).includes(UEFI_BOOT_MARK)) return true;
  }
  return false;
}
