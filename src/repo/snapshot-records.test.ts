import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BOOT_SERIAL_TAIL_LINES, testRestoreOf, type TestRestoreBootRecord } from './snapshot-records.js';

const time = '2026-11-30T02:00:00.000Z';
/** A stored report as `coffer test-restore` writes it (src/restore/test-restore/report.ts), with `boot` as given. */
const report = (boot: unknown) => ({ snapshot: 'ab'.repeat(32), vm: 'web1', startedAt: time, durationMs: 4200, passed: true, failures: [], disks: [], volumes: [], warnings: ['w'], ...(boot !== undefined ? { boot } : {}) });
const console40 = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join('\n');
const unknownBoot: TestRestoreBootRecord = { passed: false, expect: null, machine: null, accel: null, firmware: null, secureBoot: false, secondsToText: null, reason: null, serialTail: '' };

test('testRestoreOf: the boot check of a test-restore note, validated field by field; none or one without a boolean `passed` is null', () => {
  const cases: { name: string; boot: unknown; want: TestRestoreBootRecord | null }[] = [
    { name: 'not booted', boot: undefined, want: null },
    {
      name: 'booted under UEFI with Secure Boot (the report since the firmware is recorded)',
      boot: {
        passed: true, expect: 'login:', accel: 'kvm', bus: 'virtio', machine: 'q35', secondsToText: 12.34, durationMs: 13000, serialTail: `${console40}\n\n`,
        firmware: { kind: 'uefi', why: 'the VM\'s definition', description: 'OVMF with SB', code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', secureBoot: true, varsFromBackup: true },
      },
      want: {
        passed: true, expect: 'login:', machine: 'q35', accel: 'kvm', firmware: 'uefi', secureBoot: true, secondsToText: 12.34, reason: null,
        serialTail: Array.from({ length: BOOT_SERIAL_TAIL_LINES }, (_, i) => `line ${40 - BOOT_SERIAL_TAIL_LINES + i + 1}`).join('\n'),
      },
    },
    {
      name: 'failed, stored before the firmware was recorded',
      boot: { passed: false, expect: 'login:', accel: 'tcg', bus: 'sata', machine: 'pc-i440fx-7.2', reason: '"login:" did not appear on the serial console within 300 s', serialTail: 'SeaBIOS\r\nBooting from Hard Disk...\r\n', durationMs: 300000 },
      want: { passed: false, expect: 'login:', machine: 'pc-i440fx-7.2', accel: 'tcg', firmware: null, secureBoot: false, secondsToText: null, reason: '"login:" did not appear on the serial console within 300 s', serialTail: 'SeaBIOS\nBooting from Hard Disk...' },
    },
    {
      name: 'BIOS: no Secure Boot whatever the note says',
      boot: { passed: true, expect: 'login:', accel: 'kvm', bus: 'sata', machine: 'pc', secondsToText: 3, serialTail: '\x1b[=3h\x1b[0;32m  OK  \x1b[0m] Reached target\x07\nweb1 login: ', firmware: { kind: 'bios', why: 'its first disk holds an MBR boot code', secureBoot: true }, durationMs: 3500 },
      want: { passed: true, expect: 'login:', machine: 'pc', accel: 'kvm', firmware: 'bios', secureBoot: false, secondsToText: 3, reason: null, serialTail: '  OK  ] Reached target\nweb1 login: ' },
    },
    { name: 'malformed: a string', boot: 'booted', want: null },
    { name: 'malformed: null', boot: null, want: null },
    { name: 'malformed: `passed` not a boolean', boot: { passed: 'true', machine: 'q35', serialTail: 'x' }, want: null },
    {
      name: 'malformed fields read as unknown',
      boot: { passed: false, expect: 1, machine: 42, accel: 'hvf', firmware: { kind: 'coreboot', secureBoot: true }, secondsToText: -1, reason: ['no'], serialTail: 7 },
      want: unknownBoot,
    },
    { name: 'malformed: firmware not an object, seconds a string', boot: { passed: false, firmware: 'uefi', secondsToText: '12' }, want: unknownBoot },
  ];
  for (const { name, boot, want } of cases) {
    const record = testRestoreOf({ time, data: report(boot) });
    assert.deepEqual(record, { time, passed: true, durationMs: 4200, failures: [], warnings: ['w'], boot: want }, name);
  }
});

test('testRestoreOf: a console without newlines is kept to its last 4096 characters', () => {
  const serial = `${'a'.repeat(10_000)}THE END`;
  const record = testRestoreOf({ time, data: report({ passed: false, machine: 'q35', reason: 'QEMU exited (code 1)', serialTail: serial }) });
  assert.equal(record?.boot?.serialTail.length, 4096);
  assert.ok(record?.boot?.serialTail.endsWith('THE END'));
});
