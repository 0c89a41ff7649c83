/**
 * describeVm against a real QEMU started with a name, a UUID, two disks, a NIC, an anonymous
 * device and two -objects (one a secret): everything given on the command line that QMP can
 * report is in the description, and the secret's value is not.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestVm, type TestVm } from '../testing/index.js';
import { QmpClient, describeVm, VM_DESCRIPTION_FORMAT, type VmDescription } from './index.js';

const MiB = 1024 * 1024;
const UUID = '5a1e8b2c-0000-4000-8000-000000000001';
let vm: TestVm;
let qmp: QmpClient;
let description: VmDescription;

before(async () => {
  vm = await startTestVm({
    disks: [{ name: 'disk0', size: 64 * MiB }, { name: 'data', size: 16 * MiB, format: 'raw' }],
    extraArgs: [
      '-name', 'vm-one', '-uuid', UUID,
      '-object', 'secret,id=sec0,data=hunter2-do-not-store', '-object', 'iothread,id=io0',
      '-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-pci,netdev=n0,id=nic0,mac=52:54:00:12:34:56',
      '-device', 'virtio-rng-pci',
    ],
  });
  qmp = await QmpClient.connect({ path: vm.qmpSocket });
  description = await describeVm(qmp);
});
after(async () => {
  await qmp?.close();
  await vm?.stop();
});

test('the machine, its identity and its size', () => {
  assert.equal(description.format, VM_DESCRIPTION_FORMAT);
  assert.equal(description.version, 1);
  assert.deepEqual(description.qemu, qmp.greeting.version);
  assert.match(description.machineType, /^pc-q35-/);
  assert.equal(description.arch, 'x86_64');
  assert.equal(description.name, 'vm-one');
  assert.equal(description.uuid, UUID);
  assert.deepEqual(description.missing, []);
  assert.deepEqual(description.queries['query-memory-size-summary'], { 'base-memory': 64 * MiB, 'plugged-memory': 0 });
  assert.equal((description.queries['query-cpus-fast'] as unknown[]).length, 1);
  assert.equal((description.queries['query-status'] as { status: string }).status, 'running');
});

test('every -device with its parameters and its bus, named and anonymous', () => {
  const byPath = new Map(description.devices.map((d) => [d.path, d]));
  const scsi = byPath.get('/machine/peripheral/scsi0');
  assert.equal(scsi?.type, 'virtio-scsi-pci');
  for (const disk of vm.disks) {
    const dev = byPath.get(`/machine/peripheral/${disk.deviceId}`);
    assert.equal(dev?.type, 'scsi-hd');
    assert.equal(dev?.id, disk.deviceId);
    assert.equal(dev?.properties['drive'], disk.nodeName);
    assert.equal(dev?.properties['parent_bus'], '/machine/peripheral/scsi0/virtio-backend/scsi0.0');
  }
  const nic = byPath.get('/machine/peripheral/nic0');
  assert.equal(nic?.type, 'virtio-net-pci');
  assert.equal(nic?.properties['mac'], '52:54:00:12:34:56');
  assert.equal(nic?.properties['netdev'], 'n0');
  const anonymous = description.devices.filter((d) => d.path.startsWith('/machine/peripheral-anon/'));
  assert.deepEqual(anonymous.map((d) => [d.type, d.id]), [['virtio-rng-pci', undefined]]);
  assert.equal(description.devices.length, 5);
  for (const d of description.devices) assert.ok(!('type' in d.properties) && Object.keys(d.properties).length > 10, d.path);
});

test('block drives and nodes, PCI, the qtree and the network are there', () => {
  const drives = description.queries['query-block'] as { qdev: string }[];
  assert.deepEqual(drives.map((d) => d.qdev).sort(), ['data-dev', 'disk0-dev']);
  const nodes = description.queries['query-named-block-nodes'] as { 'node-name': string }[];
  assert.deepEqual(nodes.map((n) => n['node-name']).sort(), ['data', 'data-file', 'disk0', 'disk0-file']);
  const pci = JSON.stringify(description.queries['query-pci']);
  assert.match(pci, /"qdev_id":"nic0"/);
  assert.match(description.qtree ?? '', /dev: scsi-hd, id "disk0-dev"/);
  assert.doesNotMatch(description.qtree ?? '', /\r/);
  assert.match(description.network ?? '', /nic0.*macaddr=52:54:00:12:34:56/);
  assert.match(description.network ?? '', /n0: .*user/);
});

test('-objects by id and type only: a secret never ends up in the description', () => {
  assert.deepEqual(description.objects.filter((o) => o.id !== 'pc.ram'), [{ id: 'io0', type: 'iothread' }, { id: 'sec0', type: 'secret' }]);
  assert.doesNotMatch(JSON.stringify(description), /hunter2/);
});

test('the description is plain JSON and the same VM gives the same devices', async () => {
  assert.deepEqual(JSON.parse(JSON.stringify(description)), description);
  const again = await describeVm(qmp);
  // The queries may differ (the firmware assigns PCI addresses while the VM starts); the
  // definition must not.
  const definition = (d: VmDescription) => JSON.stringify([d.machineType, d.name, d.uuid, d.devices, d.objects]);
  assert.equal(definition(again), definition(description));
});
