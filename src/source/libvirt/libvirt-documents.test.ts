import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkpointXml, parseBackupJob, parseCheckpointDisks, parseDacOwner, parseDomainDisks, parseDomainNvram, pullBackupXml } from './libvirt-documents.js';
import { attr, childElement, childElements, parseXml, textOf, type XmlElement } from '../../xml/index.js';

const READ = { what: 'the test document', code: 'E_LIBVIRT_ERROR' } as const;

/** A system-mode domain as libvirt 9.0 prints it (abridged), with every kind of disk. */
const DOMAIN = `<domain type='kvm' id='7'>
  <name>web01</name>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web01.qcow2' index='2'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source dev='/dev/vg0/web01-data' index='1'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/iso/debian.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/shared.img'/>
      <target dev='vdc' bus='virtio'/>
      <shareable/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/srv/ro.qcow2'/>
      <target dev='vdd' bus='virtio'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sdb' bus='sata'/>
      <readonly/>
    </disk>
  </devices>
  <seclabel type='dynamic' model='apparmor' relabel='yes'><label>libvirt-1234</label></seclabel>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+64055:+994</label>
    <imagelabel>+64055:+994</imagelabel>
  </seclabel>
</domain>
`;

test("a domain's disks by target, and why the ones not backed up are left out", () => {
  assert.deepEqual(parseDomainDisks(DOMAIN), [
    { target: 'vda', device: 'disk', type: 'file', format: 'qcow2', source: '/var/lib/libvirt/images/web01.qcow2' },
    { target: 'vdb', device: 'disk', type: 'block', format: 'raw', source: '/dev/vg0/web01-data' },
    { target: 'sda', device: 'cdrom', type: 'file', format: 'raw', source: '/iso/debian.iso', skip: 'a cdrom, not a disk' },
    { target: 'vdc', device: 'disk', type: 'file', format: 'raw', source: '/srv/shared.img', skip: 'shareable (other VMs may write it: it has no instant of this VM)' },
    { target: 'vdd', device: 'disk', type: 'file', format: 'qcow2', source: '/srv/ro.qcow2', skip: 'read-only' },
    { target: 'sdb', device: 'cdrom', type: 'file', skip: 'a cdrom, not a disk' },
  ]);
  assert.deepEqual(parseDacOwner(DOMAIN), { uid: 64055, gid: 994 });
  assert.equal(parseDacOwner(`<domain type='qemu'><name>s</name></domain>`), undefined, 'a session daemon labels nothing');
  assert.throws(() => parseDomainDisks('<domaincheckpoint/>'), /expected a <domain> document/);
  assert.throws(() => parseDomainDisks(`<domain><devices><disk><target dev='../x'/></disk></devices></domain>`), /target/);
  assert.throws(() => parseDomainDisks(`<domain><devices><disk><target dev='vda'/></disk><disk><target dev='vda'/></disk></devices></domain>`), /share a target/);
});

test("a domain's UEFI variable store: the file to read, or why it is not read", () => {
  const withOs = (os: string) => `<domain type='kvm'><name>web01</name><os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type>${os}</os></domain>`;
  const loader = "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>";
  const cases: [string, ReturnType<typeof parseDomainNvram>][] = [
    [withOs(''), undefined],
    [withOs("<boot dev='hd'/>"), undefined],
    [withOs(`${loader}<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/web01_VARS.fd</nvram>`), { file: '/var/lib/libvirt/qemu/nvram/web01_VARS.fd' }],
    [withOs(`${loader}<nvram>\n  /srv/vars &amp; more.fd\n</nvram>`), { file: '/srv/vars & more.fd' }],
    [withOs(`${loader}<nvram template='/t.fd'/>`), undefined],
    [withOs(`${loader}<nvram type='file'><source file='/srv/web01_VARS.fd'/></nvram>`), { file: '/srv/web01_VARS.fd' }],
    [withOs(`${loader}<nvram format='raw'>/srv/a.fd</nvram>`), { file: '/srv/a.fd' }],
    [withOs(`${loader}<nvram format='qcow2'>/srv/a.qcow2</nvram>`), { skip: 'the UEFI variable store /srv/a.qcow2 is a qcow2 file: only a raw one is read' }],
    [withOs(`${loader}<nvram type='network'><source protocol='iscsi' name='iqn.2013-07.com.example:iscsi-nopool/0'><host name='example.com' port='6000'/></source></nvram>`),
      { skip: "the UEFI variable store is of type 'network' (iqn.2013-07.com.example:iscsi-nopool/0): only a file is read" }],
    [withOs(`${loader}<nvram type='block'><source dev='/dev/vg0/web01-vars'/></nvram>`), { skip: "the UEFI variable store is of type 'block' (/dev/vg0/web01-vars): only a file is read" }],
  ];
  for (const [xml, expected] of cases) assert.deepEqual(parseDomainNvram(xml), expected, xml);
  assert.throws(() => parseDomainNvram('<domainbackup/>'), /expected a <domain> document/);
});

test("a checkpoint's tracked disks and a running job, as virsh 9.0 prints them", () => {
  const checkpoint = `<domaincheckpoint>
  <name>coffer-1</name>
  <creationTime>1795656017</creationTime>
  <disks>
    <disk name='vda' checkpoint='bitmap' bitmap='coffer-1'/>
    <disk name='vdb' checkpoint='no'/>
  </disks>
</domaincheckpoint>`;
  assert.deepEqual([...parseCheckpointDisks(checkpoint)], ['vda']);
  const job = `<domainbackup mode='pull'>
  <incremental>coffer-1</incremental>
  <server transport='unix' socket='/tmp/lvt/w/coffer-backup.sock'/>
  <disks>
    <disk name='vda' backup='yes' type='file' backupmode='incremental' incremental='coffer-1' exportname='vda' exportbitmap='backup-vda' index='6'>
      <driver type='qcow2'/>
      <scratch file='/tmp/lvt/w/s-vda.qcow2'/>
    </disk>
    <disk name='vdb' backup='yes' type='file' backupmode='full' exportname='vdb' index='7'>
      <driver type='qcow2'/>
      <scratch file='/tmp/lvt/w/s-vdb.qcow2'/>
    </disk>
    <disk name='sda' backup='no'/>
  </disks>
</domainbackup>`;
  assert.deepEqual(parseBackupJob(job), {
    mode: 'pull',
    socket: '/tmp/lvt/w/coffer-backup.sock',
    disks: [
      { name: 'vda', exportName: 'vda', exportBitmap: 'backup-vda', backupMode: 'incremental', incremental: 'coffer-1' },
      { name: 'vdb', exportName: 'vdb', backupMode: 'full' },
    ],
  });
});

test('the backup request and the checkpoint read back as what was asked, with hostile names escaped', () => {
  const { root: request } = parseXml(
    pullBackupXml(`/run/c'o<ffer/coffer-backup.sock`, [
      { target: 'vda', backup: true, since: 'coffer-1', scratch: '/w/scratch-vda.qcow2' },
      { target: 'vdb', backup: true, scratch: '/w/scratch-vdb.qcow2' },
      { target: 'sda', backup: false },
    ]),
    READ,
  );
  const attributes = (e: XmlElement | undefined): Record<string, string | undefined> => Object.fromEntries((e?.attributes ?? []).map((a) => [a.name, attr(e, a.name)]));
  assert.equal(attr(request, 'mode'), 'pull');
  assert.deepEqual(attributes(childElements(request)[0]), { transport: 'unix', socket: `/run/c'o<ffer/coffer-backup.sock` });
  const list = childElement(request, 'disks');
  assert.ok(list !== undefined);
  const disks = childElements(list, 'disk');
  assert.deepEqual(disks.map(attributes), [
    { name: 'vda', backupmode: 'incremental', incremental: 'coffer-1', type: 'file' },
    { name: 'vdb', backupmode: 'full', type: 'file' },
    { name: 'sda', backup: 'no' },
  ]);
  assert.deepEqual(disks.map((d) => attr(childElements(d)[0], 'file')), ['/w/scratch-vda.qcow2', '/w/scratch-vdb.qcow2', undefined]);
  const checkpoint = checkpointXml('coffer-2', [{ target: 'vda', tracked: true }, { target: 'vdb', tracked: false }]);
  const name = childElement(parseXml(checkpoint, READ).root, 'name');
  assert.equal(name === undefined ? undefined : textOf(name), 'coffer-2');
  assert.deepEqual([...parseCheckpointDisks(checkpoint)], ['vda']);
});
