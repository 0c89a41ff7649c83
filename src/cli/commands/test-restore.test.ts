/** The test restore's text report: the boot check's line says which firmware ran and why. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestRestoreReport } from '../../restore/index.js';
import { renderReport } from './test-restore.js';

const base: TestRestoreReport = { snapshot: 'a1b2c3d4e5f6', vm: 'web01', startedAt: '2026-11-30T00:00:00.000Z', durationMs: 12_345, passed: true, failures: [], disks: [], volumes: [], warnings: [] };

test('a UEFI boot with Secure Boot and the VM\'s own variable store, and a BIOS boot that failed, each say so on their line', () => {
  const uefi = renderReport({
    ...base,
    boot: {
      passed: true, expect: 'login:', accel: 'tcg', bus: 'virtio', machine: 'pc-q35-7.2', secondsToText: 9.84, serialTail: 'login:', durationMs: 10_000,
      firmware: { kind: 'uefi', why: 'the VM\'s definition, with its UEFI variable store from the backup', description: 'UEFI firmware for x86_64', code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', secureBoot: true, varsFromBackup: true },
    },
  });
  assert.match(uefi, /^boot \(pc-q35-7\.2, tcg, virtio, UEFI \(Secure Boot; the VM's variable store; the VM's definition, with its UEFI variable store from the backup\)\): "login:" appeared on the serial console after 9\.8 s$/m);
  const bios = renderReport({
    ...base, passed: false, failures: ['boot: "login:" did not appear on the serial console within 8 s'],
    boot: { passed: false, expect: 'login:', accel: 'tcg', bus: 'sata', machine: 'q35', reason: '"login:" did not appear on the serial console within 8 s', serialTail: 'SeaBIOS\nBooting from Hard Disk...', durationMs: 8000, firmware: { kind: 'bios', why: 'asked (--boot-firmware bios)' } },
  });
  assert.match(bios, /^boot \(q35, tcg, sata, BIOS \(asked \(--boot-firmware bios\)\)\): FAILED: "login:" did not appear/m);
  assert.match(bios, /^ {4}\| Booting from Hard Disk\.\.\.$/m);
  const old = renderReport({ ...base, boot: { passed: true, expect: 'login:', accel: 'kvm', bus: 'sata', machine: 'q35', secondsToText: 3, serialTail: '', durationMs: 3000 } });
  assert.match(old, /^boot \(q35, kvm, sata\): "login:" appeared/m, 'a report stored before firmware was recorded');
});
