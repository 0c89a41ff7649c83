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
  assert.equal(bootHints({ format: 'libvirt-xml', data: b64(loader) }).secureBoot, false, 'an explicit loader is not secure unless it says so');
  assert.equal(bootHints({ format: 'libvirt-xml', data: b64(efi) }).secureBoot, undefined, 'firmware=\'efi\' alone: libvirt\'s choice, the store tells');
  const secureLoader = loader.replace("type='pflash'", "type='pflash' secure='yes'");
  assert.equal(bootHints({ format: 'libvirt-xml', data: b64(secureLoader) }).secureBoot, true);
  const secureFeature = xml.replace('<os>', "<os firmware='efi'><firmware><feature enabled='yes' name='enrolled-keys'/><feature enabled='yes' name='secure-boot'/></firmware>");
  assert.deepEqual([bootHints({ format: 'libvirt-xml', data: b64(secureFeature) }).uefi, bootHints({ format: 'libvirt-xml', data: b64(secureFeature) }).secureBoot], [true, true]);
  const secureOff = secureFeature.replace("enabled='yes' name='secure-boot'", "enabled='no' name='secure-boot'");
  assert.equal(bootHints({ format: 'libvirt-xml', data: b64(secureOff) }).secureBoot, false);
});

test('a libvirt domain on UEFI: its variable store is the disk nvram (with or without <nvram> in the stored XML), unless the loader keeps none', () => {
  const domain = (os: string) => b64(`<domain type='kvm'><name>web01</name><os${os}</os><devices><disk type='file' device='disk'><source file='/v/a.raw'/><target dev='vda' bus='virtio'/></disk></devices></domain>`);
  const type = "<type arch='x86_64' machine='pc-q35-7.2'>hvm</type>";
  const loader = "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>";
  const nvram = "<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/web01_VARS.fd</nvram>";
  assert.deepEqual(bootHints({ format: 'libvirt-xml', data: domain(`>${type}${loader}${nvram}`) }), { machine: 'pc-q35-7.2', bus: 'virtio', uefi: true, secureBoot: false, firmwareVars: ['nvram'] });
  assert.deepEqual(bootHints({ format: 'libvirt-xml', data: domain(` firmware='efi'>${type}`) }).firmwareVars, ['nvram'], 'firmware autoselection: libvirt names the store only in the live XML');
  assert.equal(bootHints({ format: 'libvirt-xml', data: domain(`>${type}${loader.replace("type='pflash'", "type='pflash' stateless='yes'")}`) }).firmwareVars, undefined);
  assert.equal(bootHints({ format: 'libvirt-xml', data: domain(`>${type}<loader type='rom'>/usr/share/OVMF/OVMF.fd</loader>`) }).firmwareVars, undefined);
  assert.equal(bootHints({ format: 'libvirt-xml', data: domain(`>${type}`) }).firmwareVars, undefined, 'BIOS');
});

test('a QMP description of a VM on UEFI: its flash drives say so, the writable one is the variable store, a secure flash is Secure Boot', () => {
  const description = {
    format: 'coffer.qmp-vm-description', version: 1, machineType: 'pc-q35-7.2-machine',
    devices: [{ path: '/machine/peripheral/d0', id: 'd0', type: 'virtio-blk-pci', properties: {}, unreadable: [] }],
    queries: {
      'query-block': [
        { device: 'pflash0', qdev: '/machine/system.flash0', inserted: { 'node-name': '#block116', ro: true } },
        { device: 'pflash1', qdev: '/machine/system.flash1', inserted: { 'node-name': '#block346', ro: false } },
        { device: '', qdev: '/machine/peripheral/d0/virtio-backend', inserted: { 'node-name': 'disk0', ro: false } },
      ],
    },
    commandLine: { argv: ['qemu-system-x86_64', '-machine', 'q35'] },
  };
  const data = () => b64(JSON.stringify(description));
  assert.deepEqual(bootHints({ format: 'coffer.qmp-vm-description', data: data() }), { machine: 'pc-q35-7.2', bus: 'virtio', uefi: true, secureBoot: false, firmwareVars: ['pflash1', '#block346'] });
  description.commandLine.argv.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
  assert.equal(bootHints({ format: 'coffer.qmp-vm-description', data: data() }).secureBoot, true);
  const { commandLine: _known, ...unknown } = description;
  assert.equal(bootHints({ format: 'coffer.qmp-vm-description', data: b64(JSON.stringify(unknown)) }).secureBoot, undefined, 'no command line: the store tells');
  description.queries['query-block'] = description.queries['query-block'].slice(2);
  assert.equal(bootHints({ format: 'coffer.qmp-vm-description', data: data() }).uefi, undefined, 'no flash: BIOS');
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
