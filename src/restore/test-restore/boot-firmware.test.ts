/**
 * planFirmware's choice of Secure Boot for a VM whose definition leaves it open (libvirt's
 * firmware='efi'): its backed-up variable store decides, read through this host's QEMU
 * firmware descriptors and Debian's OVMF stores (.ci/run installs ovmf). A definition that says
 * it wins over the store.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { bufferDevice } from '../../blockdev/index.js';
import type { BootHints } from '../vm/boot-hints.js';
import { planFirmware, type FirmwarePlan } from './boot-firmware.js';

const disk = { name: 'vda', device: bufferDevice(new Uint8Array(1 << 20)) };

async function plan(hints: BootHints, store: string): Promise<FirmwarePlan> {
  return planFirmware('auto', { uefi: true, firmwareVars: ['nvram'], ...hints }, [disk, { name: 'nvram', device: bufferDevice(await readFile(store)) }], 'pc-q35-7.2');
}

function firmwareOf(p: FirmwarePlan): { secureBoot: boolean; code: string; varsDisk: string | undefined; why: string } {
  assert.ok(p.kind === 'uefi' && 'firmware' in p, JSON.stringify(p));
  return { secureBoot: p.firmware.secureBoot, code: p.firmware.code.filename, varsDisk: p.varsDisk, why: p.why };
}

test('firmware=\'efi\' with a store holding enrolled keys boots Secure Boot firmware with that store; an empty store, firmware without', async () => {
  const enrolled = firmwareOf(await plan({}, '/usr/share/OVMF/OVMF_VARS_4M.ms.fd'));
  assert.deepEqual([enrolled.secureBoot, enrolled.code, enrolled.varsDisk], [true, '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', 'nvram']);
  assert.match(enrolled.why, /Secure Boot, as its variable store has keys enrolled/);
  const empty = firmwareOf(await plan({}, '/usr/share/OVMF/OVMF_VARS_4M.fd'));
  assert.deepEqual([empty.secureBoot, empty.code, empty.varsDisk], [false, '/usr/share/OVMF/OVMF_CODE_4M.fd', 'nvram']);
});

test('a definition that says whether it used Secure Boot wins over the store', async () => {
  assert.equal(firmwareOf(await plan({ secureBoot: false }, '/usr/share/OVMF/OVMF_VARS_4M.ms.fd')).secureBoot, false);
  assert.equal(firmwareOf(await plan({ secureBoot: true }, '/usr/share/OVMF/OVMF_VARS_4M.fd')).secureBoot, true);
});
