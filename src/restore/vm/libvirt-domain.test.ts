import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attr, childElement, childElements, parseXml, textOf, type XmlElement } from '../../xml/index.js';
import { cloneLibvirtDomain, type RestoredDiskImage } from './libvirt-domain.js';
import { randomIdentities } from './new-identity.js';

const loader = "<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>";
const features = "<firmware><feature enabled='yes' name='enrolled-keys'/><feature enabled='yes' name='secure-boot'/></firmware>";
const domain = (osAttributes: string, os: string) => `<domain type='kvm'>
  <name>web01</name>
  <os${osAttributes}>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>${os}
    <boot dev='hd'/>
  </os>
  <features><acpi/><smm state='on'/></features>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/web01.qcow2'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>
`;
const vda: RestoredDiskImage = { name: 'vda', path: '/restore/web02-vda.qcow2', format: 'qcow2' };
const nvram: RestoredDiskImage = { name: 'nvram', path: "/restore/it's & web02-nvram.raw", format: 'raw' };

/** The clone's `<os>`: its children as [name, text, attributes]. */
function osOf(text: string): [string, string, Record<string, string | undefined>][] {
  const os = childElement(parseXml(text, { what: 'the clone', code: 'E_IMAGE_INVALID' }).root, 'os') as XmlElement;
  return childElements(os).map((e) => [e.name, e.name === 'firmware' ? '' : textOf(e).trim(), Object.fromEntries(e.attributes.map((a) => [a.name, attr(e, a.name)]))]);
}

test("a UEFI domain's restored variable store becomes its <nvram> (template, loader and Secure Boot kept), never a disk", () => {
  const cases: [string, string, string][] = [
    ['explicit loader and store', '', `${loader}\n    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/var/lib/libvirt/qemu/nvram/web01_VARS.fd</nvram>`],
    ['a store of type file', '', `${loader}\n    <nvram type='file' template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'><source file='/var/lib/libvirt/qemu/nvram/web01_VARS.fd'/></nvram>`],
  ];
  for (const [what, osAttributes, os] of cases) {
    const clone = cloneLibvirtDomain(domain(osAttributes, os), { name: 'web02', disks: [vda], nvram, identity: randomIdentities() });
    assert.deepEqual(osOf(clone.text), [
      ['type', 'hvm', { arch: 'x86_64', machine: 'pc-q35-7.2' }],
      ['loader', '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', { readonly: 'yes', secure: 'yes', type: 'pflash' }],
      ['nvram', nvram.path, { template: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' }],
      ['boot', '', { dev: 'hd' }],
    ], what);
    assert.ok(!clone.text.includes('web01_VARS.fd'), what);
    assert.deepEqual(clone.disks, [{ target: 'vda', disk: 'vda', path: vda.path }], what);
    assert.equal((clone.text.match(/<disk /g) ?? []).length, 1, `${what}: the store is no <disk>`);
    assert.deepEqual(clone.notes, [], what);
  }
});

test("firmware='efi' stored without <nvram> (libvirt names it when the domain starts): one is added with the restored store", () => {
  const clone = cloneLibvirtDomain(domain(" firmware='efi'", features), { name: 'web02', disks: [vda], nvram, identity: randomIdentities() });
  assert.deepEqual(osOf(clone.text), [
    ['type', 'hvm', { arch: 'x86_64', machine: 'pc-q35-7.2' }],
    ['nvram', nvram.path, {}],
    ['firmware', '', {}],
    ['boot', '', { dev: 'hd' }],
  ]);
  assert.ok(clone.text.includes(features), 'the Secure Boot features are kept');
  assert.match(clone.text, /<os firmware='efi'>/);
});

test('without a restored store, the original one is dropped (its template kept); a store for a BIOS domain is reported, not used', () => {
  const withStore = domain('', `${loader}\n    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/var/lib/libvirt/qemu/nvram/web01_VARS.fd</nvram>`);
  const fresh = cloneLibvirtDomain(withStore, { name: 'web02', disks: [vda], identity: randomIdentities() });
  assert.deepEqual(osOf(fresh.text).find(([name]) => name === 'nvram'), ['nvram', '', { template: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' }]);
  const noTemplate = cloneLibvirtDomain(withStore.replace(" template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'", ''), { name: 'web02', disks: [vda], identity: randomIdentities() });
  assert.equal(osOf(noTemplate.text).find(([name]) => name === 'nvram'), undefined);

  const bios = cloneLibvirtDomain(domain('', ''), { name: 'web02', disks: [vda], nvram, identity: randomIdentities() });
  assert.equal(osOf(bios.text).find(([name]) => name === 'nvram'), undefined);
  assert.deepEqual(bios.notes, [`the restored UEFI variable store ${nvram.path} is not used: the definition does not boot through UEFI`]);
});
