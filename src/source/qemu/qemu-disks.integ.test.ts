/**
 * How live backup names a running VM's disks, on a real QEMU: the guest device id, found in
 * query-block's `qdev` whether it is the id (scsi-hd) or a QOM path holding it (virtio-blk's
 * `/machine/peripheral/ID/virtio-backend`), else the drive id, else the node name; and a disk
 * whose previous backup used another of these names keeps it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { deviceIdOfQdev, QmpClient } from '../../qmp/index.js';
import { requireTools, startTestVm, type TestVm } from '../../testing/index.js';
import { listQemuDisks } from './qemu-disks.js';

const MiB = 1024 * 1024;
let vm: TestVm;
let qmp: QmpClient;

before(async () => {
  await requireTools('qemu-system-x86_64', 'qemu-img');
  vm = await startTestVm({
    disks: [
      { name: 'sd', size: 4 * MiB },
      { name: 'vd', size: 4 * MiB, bus: 'virtio' },
    ],
    // A virtio-blk device without an id: its QOM path is under /machine/peripheral-anon.
    extraArgs: ['-blockdev', 'driver=null-co,node-name=anon,size=4194304', '-device', 'virtio-blk-pci,drive=anon'],
  });
  qmp = await QmpClient.connect({ path: vm.qmpSocket });
});
after(async () => {
  await qmp?.close();
  await vm?.stop();
});

test('disks are named by their device id (virtio-blk\'s too), else their node', async () => {
  const disks = await listQemuDisks(qmp);
  assert.deepEqual(disks.map((d) => [d.name, d.nodeName]), [['sd-dev', 'sd'], ['vd-dev', 'vd'], ['anon', 'anon']]);
});

test('a disk whose previous backup named it by its node keeps that name; unknown names do not matter', async () => {
  const disks = await listQemuDisks(qmp, new Set(['vd', 'gone-dev']));
  assert.deepEqual(disks.map((d) => d.name), ['sd-dev', 'vd', 'anon']);
});

test('deviceIdOfQdev: an id, an id in a peripheral QOM path, none for anonymous devices', () => {
  assert.equal(deviceIdOfQdev('disk0-dev'), 'disk0-dev');
  assert.equal(deviceIdOfQdev('/machine/peripheral/data-dev/virtio-backend'), 'data-dev');
  assert.equal(deviceIdOfQdev('/machine/peripheral/data-dev'), 'data-dev');
  assert.equal(deviceIdOfQdev('/machine/peripheral-anon/device[1]/virtio-backend'), undefined);
  assert.equal(deviceIdOfQdev(''), undefined);
  assert.equal(deviceIdOfQdev(undefined), undefined);
});
