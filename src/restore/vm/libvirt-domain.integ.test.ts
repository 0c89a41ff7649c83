/**
 * The clone of a libvirt domain definition, checked by the REAL libvirt: `virsh -c
 * test:///default` (libvirt's built-in test driver, no daemon) defines the rewritten XML next
 * to the original and its own `dumpxml` shows the new name, UUID, MACs and disk paths. Two
 * definitions: the test driver's own domain as dumpxml prints it, and a running QEMU domain's
 * dumpxml (id, aliases, seclabels, backing chain, tap target, NVRAM path: all of the runtime
 * and identity state a clone must not carry).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { isCofferError } from '../../errors/index.js';
import { makeTempDir, requireTools } from '../../testing/index.js';
import { cloneLibvirtDomain, defineLibvirtDomain, randomIdentities, type RestoredDiskImage } from '../index.js';

const execFileAsync = promisify(execFile);
const TEST_URI = 'test:///default';

/** A running QEMU domain as libvirt 9 prints it (`virsh dumpxml web01`), with runtime state. */
const RUNNING_QEMU_DOMAIN = `<domain type='kvm' id='7'>
  <name>web01</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <genid>43dc0cf8-809b-4adb-9bea-a9abb5f3d90e</genid>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/web01_VARS.fd</nvram>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web01.qcow2' index='2'/>
      <backingStore type='file' index='3'>
        <format type='raw'/>
        <source file='/var/lib/libvirt/images/base.raw'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source dev='/dev/vg0/web01-data' index='1'/>
      <backingStore/>
      <encryption format='luks'>
        <secret type='passphrase' uuid='0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f'/>
      </encryption>
      <target dev='vdb' bus='virtio'/>
      <alias name='ua-data'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:6b:3c:58'/>
      <source network='default' portid='ab4e8d3a-3d2c-4a4c-a6a4-4c2e1a3a8b11' bridge='virbr0'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
      <alias name='net0'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source bridge='br0'/>
      <model type='e1000'/>
    </interface>
  </devices>
  <seclabel type='dynamic' model='apparmor' relabel='yes'>
    <label>libvirt-4dea22b3-1d52-d8f3-2516-782e98ab3fa0</label>
    <imagelabel>libvirt-4dea22b3-1d52-d8f3-2516-782e98ab3fa0</imagelabel>
  </seclabel>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+64055:+994</label>
    <imagelabel>+64055:+994</imagelabel>
  </seclabel>
</domain>
`;

let work: { path: string; remove(): Promise<void> };
before(async () => {
  await requireTools('virsh');
  work = await makeTempDir('coffer-libvirt-clone');
});
after(() => work?.remove());

/** Runs several virsh commands in ONE connection (the test driver forgets everything between connections). */
async function virsh(commands: string): Promise<string> {
  const { stdout } = await execFileAsync('virsh', ['-c', TEST_URI, commands], { timeout: 60_000, encoding: 'utf8' });
  return stdout;
}

/** The `<domain>…</domain>` that dumpxml printed after the define message. */
function dumped(output: string): string {
  const start = output.indexOf('<domain');
  assert.ok(start >= 0, `dumpxml printed a domain:\n${output}`);
  return output.slice(start);
}

const MAC_OF_CLONE = /^52:54:00(:[0-9a-f]{2}){3}$/;

test('the test driver\'s own domain, cloned: libvirt defines it beside the original, with a new identity', async () => {
  const original = dumped(await virsh('dumpxml test'));
  const disks: RestoredDiskImage[] = [{ name: 'vda', path: join(work.path, 'clone-vda.qcow2'), format: 'qcow2' }];
  const clone = cloneLibvirtDomain(original, { name: 'clone', disks, identity: randomIdentities() });
  const file = join(work.path, 'clone.xml');
  await writeFile(file, clone.text);
  const both = await virsh(`define ${file}; dumpxml clone; dumpxml test`);
  const [defined, untouched] = dumped(both).split(/(?=<domain)/);
  assert.ok(defined !== undefined && untouched !== undefined);
  assert.match(defined, /<name>clone<\/name>/);
  assert.match(defined, new RegExp(`<uuid>${clone.uuid}</uuid>`));
  assert.notEqual(clone.uuid, '6695eb01-f6a4-8304-79aa-97f2502e193f');
  assert.match(defined, new RegExp(`<source file='${join(work.path, 'clone-vda.qcow2')}'/>`));
  assert.match(defined, /<driver name='qemu' type='qcow2'\/>/);
  const mac = /<mac address='([^']+)'\/>/.exec(defined)?.[1];
  assert.equal(mac, clone.macs[0]?.to);
  assert.match(mac ?? '', MAC_OF_CLONE);
  assert.equal(clone.macs[0]?.from, 'aa:bb:cc:dd:ee:ff');
  assert.doesNotMatch(clone.text, /testnet0|id='1'/, 'the tap name and the running id are not carried over (the test driver names a new tap itself)');
  assert.doesNotMatch(defined, /<domain type='test' id=/);
  for (const kept of ['<name>test</name>', 'aa:bb:cc:dd:ee:ff', '/guest/diskimage1']) assert.ok(untouched.includes(kept), `the original still has ${kept}`);
});

test('a running QEMU domain, cloned: no runtime or identity state of the original is left, devices are kept', async () => {
  const disks: RestoredDiskImage[] = [
    { name: 'vda', path: join(work.path, 'web02-vda.raw'), format: 'raw' },
    { name: 'vdb', path: join(work.path, 'web02 data,1.raw'), format: 'raw' },
  ];
  const clone = cloneLibvirtDomain(RUNNING_QEMU_DOMAIN, { name: 'web02', disks, identity: randomIdentities() });
  for (const gone of ["id='7'", 'seclabel', 'libvirt-4dea22b3', 'backingStore', 'base.raw', 'vnet3', "alias name='virtio-disk0'", "alias name='net0'", 'web01_VARS.fd', '43dc0cf8', '52:54:00:6b:3c:58', '52:54:00:aa:bb:cc', '/dev/vg0', "index='", 'encryption', '0a81f5b2']) {
    assert.ok(!clone.text.includes(gone), `${gone} is gone from the clone:\n${clone.text}`);
  }
  for (const kept of ["<alias name='ua-data'/>", "device='cdrom'", "<model type='e1000'/>", "<source bridge='br0'/>", "cache='none'", "bus='0x04'", 'OVMF_VARS_4M.fd', 'OVMF_CODE_4M.fd']) {
    assert.ok(clone.text.includes(kept), `${kept} is kept in the clone`);
  }
  assert.deepEqual(clone.disks.map((d) => d.target), ['vda', 'vdb']);
  assert.equal(clone.macs.length, 2);
  assert.notEqual(clone.macs[0]?.to, clone.macs[1]?.to);

  const file = join(work.path, 'web02.xml');
  await writeFile(file, clone.text);
  const original = join(work.path, 'web01.xml');
  await writeFile(original, RUNNING_QEMU_DOMAIN);
  const [defined] = dumped(await virsh(`define ${original}; define ${file}; dumpxml web02`)).split(/(?=<domain)/);
  assert.ok(defined !== undefined);
  assert.match(defined, /<name>web02<\/name>/);
  assert.match(defined, new RegExp(`<uuid>${clone.uuid}</uuid>`));
  assert.match(defined, /<genid>[0-9a-f-]{36}<\/genid>/, 'libvirt gave the clone a generation id of its own');
  assert.doesNotMatch(defined, /43dc0cf8/);
  assert.match(defined, new RegExp(`<disk type='file' device='disk'>\\s*<driver name='qemu' type='raw'/>\\s*<source file='${join(work.path, 'web02-vda.raw')}'/>`));
  assert.ok(defined.includes(`<source file='${join(work.path, 'web02 data,1.raw')}'/>`), 'a path with a space and a comma survives');
  for (const m of clone.macs) assert.ok(defined.includes(`<mac address='${m.to}'/>`) && MAC_OF_CLONE.test(m.to));
});

test('a restored disk the definition does not name, and one it names but was not backed up, are reported', () => {
  const clone = cloneLibvirtDomain(RUNNING_QEMU_DOMAIN, { name: 'web03', disks: [{ name: 'vda', path: '/r/vda.raw', format: 'raw' }, { name: 'vdz', path: '/r/vdz.raw', format: 'raw' }], identity: randomIdentities() });
  assert.ok(!clone.text.includes("dev='vdb'"), 'the disk without a restored image is removed');
  assert.equal(clone.notes.length, 2, clone.notes.join('\n'));
  assert.match(clone.notes.join('\n'), /vdb has no restored image[\s\S]*vdz matches no disk/);
});

test('XML that is not a well-formed domain is refused with E_IMAGE_INVALID', () => {
  for (const bad of ['', '<domain><name>x</domain>', '<network/>', '<domain/><domain/>', '<!DOCTYPE x><domain/>', 'garbage']) {
    assert.throws(() => cloneLibvirtDomain(bad, { name: 'x', disks: [], identity: randomIdentities() }), (e) => isCofferError(e, 'E_IMAGE_INVALID'), JSON.stringify(bad));
  }
});

test('virsh define: accepted, and a refusal is one E_TARGET_UNWRITABLE with libvirt\'s reason', async () => {
  const file = join(work.path, 'ok.xml');
  await writeFile(file, cloneLibvirtDomain(RUNNING_QEMU_DOMAIN, { name: 'ok', disks: [], identity: randomIdentities() }).text);
  assert.match(await defineLibvirtDomain(file, { connect: TEST_URI }), /Domain 'ok' defined/);
  const bad = join(work.path, 'bad.xml');
  await writeFile(bad, "<domain type='kvm'><name>no memory</name></domain>");
  await assert.rejects(defineLibvirtDomain(bad, { connect: TEST_URI }), (e) => isCofferError(e, 'E_TARGET_UNWRITABLE') && /virsh define .* failed: error/.test(e.message) && !e.message.includes('\n'));
});
