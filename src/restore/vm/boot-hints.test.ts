import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootHints } from './boot-hints.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');

test('a libvirt domain: machine type, memory in its unit, the first disk\'s bus', () => {
  const xml = `<domain type='kvm'>
  <name>web01</name>
  <memory unit='KiB'>2097152</memory>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>
    <disk type='file' device='disk'><source file='/v/web01.qcow2'/><target dev='sda' bus='sata'/></disk>
    <disk type='file' device='disk'><target dev='vdb' bus='virtio'/></disk>
  </devices>
</domain>`;
  assert.deepEqual(bootHints({ format: 'libvirt-xml', data: b64(xml) }), { machine: 'pc-i440fx-7.2', memoryMiB: 2048, bus: 'sata' });
  const gib = xml.replace("<memory unit='KiB'>2097152</memory>", "<memory unit='GiB'>4</memory>");
  assert.equal(bootHints({ format: 'libvirt-xml', data: b64(gib) }).memoryMiB, 4096);
  const efi = xml.replace('<os>', "<os firmware='efi'>");
  assert.equal(bootHints({ format: 'libvirt-xml', data: b64(efi) }).uefi, true);
  const loader = xml.replace('<boot dev', "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader><boot dev");
  assert.equal(bootHints({ format: 'libvirt-xml', data: b64(loader) }).uefi, true);
});

test('a QMP description: machine type, base memory, disk device type', () => {
  const description = {
    format: 'coffer.qmp-vm-description', version: 1, machineType: 'pc-i440fx-7.2-machine',
    devices: [{ path: '/machine/peripheral/d0', id: 'd0', type: 'ide-hd', properties: {}, unreadable: [] }],
    queries: { 'query-memory-size-summary': { 'base-memory': 512 * 1048576 } },
  };
  assert.deepEqual(bootHints({ format: 'coffer.qmp-vm-description', data: b64(JSON.stringify(description)) }), { machine: 'pc-i440fx-7.2', memoryMiB: 512, bus: 'ide' });
  description.machineType = 'pc-q35-7.2-machine';
  description.devices.push({ path: '/machine/peripheral/v', id: 'v', type: 'virtio-blk-pci', properties: {}, unreadable: [] });
  assert.deepEqual(bootHints({ format: 'coffer.qmp-vm-description', data: b64(JSON.stringify(description)) }), { machine: 'pc-q35-7.2', memoryMiB: 512, bus: 'virtio' });
});

test('no definition, an unknown format or an unreadable one: no hints, never an error', () => {
  assert.deepEqual(bootHints(null), {});
  assert.deepEqual(bootHints({ format: 'vmware-vmx', data: b64('x') }), {});
  assert.deepEqual(bootHints({ format: 'libvirt-xml', data: b64('<domain><memory>') }), {});
  assert.deepEqual(bootHints({ format: 'coffer.qmp-vm-description', data: b64('{') }), {});
});
