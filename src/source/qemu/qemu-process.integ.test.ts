/**
 * The command line of the QEMU behind a local QMP socket, found through /proc (a real QEMU,
 * TCG, no guest OS), with its secrets redacted; and the redaction of every form QEMU takes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { describeVm, QmpClient } from '../../qmp/index.js';
import { startTestVm, type TestVm } from '../../testing/index.js';
import { qemuCommandLine, REDACTED, redactCommandLine } from './qemu-process.js';

let vm: TestVm;

before(async () => {
  vm = await startTestVm({ extraArgs: ['-name', 'web01', '-object', 'secret,id=sec0,data=hunter2', '-object', '{"qom-type":"secret","id":"sec1","data":"swordfish"}'] });
});
after(() => vm?.stop());

test('the QEMU listening on a QMP socket is found, its command line read with the secrets redacted', async () => {
  const found = await qemuCommandLine(vm.qmpSocket);
  assert.ok('argv' in found, JSON.stringify(found));
  assert.equal(found.pid, vm.pid);
  assert.match(found.argv[0] ?? '', /qemu-system-x86_64$/);
  assert.ok(found.argv.some((a) => a.includes(vm.qmpSocket)), 'the monitor option is there');
  assert.ok(found.argv.includes('web01'));
  const text = found.argv.join(' ');
  assert.doesNotMatch(text, /hunter2|swordfish/);
  assert.ok(found.argv.includes(`secret,id=sec0,data=${REDACTED}`));
  assert.ok(found.argv.includes(JSON.stringify({ 'qom-type': 'secret', id: 'sec1', data: REDACTED })));
  // A description as the backup stores it: QMP's, plus the command line.
  const qmp = await QmpClient.connect({ path: vm.qmpSocket });
  try {
    const description = await describeVm(qmp);
    assert.doesNotMatch(JSON.stringify(description), /hunter2|swordfish/, 'QMP itself reports no secret values either');
  } finally {
    await qmp.close();
  }
});

test('the socket named through another path to the same folder (a /var/run → /run link) is found', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-proc-link-'));
  try {
    const link = path.join(dir, 'run');
    await fs.symlink(path.dirname(vm.qmpSocket), link);
    const found = await qemuCommandLine(path.join(link, path.basename(vm.qmpSocket)));
    assert.ok('argv' in found, JSON.stringify(found));
    assert.equal(found.pid, vm.pid);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a socket nobody on this host listens on gives the reason, not an error', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-proc-'));
  try {
    const found = await qemuCommandLine(path.join(dir, 'none.qmp'));
    assert.ok('unavailable' in found);
    assert.match(found.unavailable, /no process of this host listens on/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('secrets are redacted in key=value and JSON options; ids that name secrets and escaped commas are kept', () => {
  assert.deepEqual(
    redactCommandLine([
      '-object', 'secret,id=s0,data=abc,format=raw',
      '-object', 'secret_keyring,id=s1,serial=12,data=zzz',
      '-drive', 'file=iscsi://h/t/0,file.password=pw1,file.user=u,if=none',
      '-spice', 'port=5900,password=pw2',
      '-object', 'tls-creds-x509,id=tls0,dir=/etc/pki,passwordid=s0',
      '-blockdev', '{"driver":"rbd","pool":"p","image":"i","key-secret":"s0","server":[{"host":"a","port":"6789"}],"password":"pw3"}',
      '-drive', 'file=/a,,data=x.img,format=raw',
      '-device', 'virtio-blk-pci,drive=d0',
      '-drive', 'file=iscsi://admin%s3cret@10.0.0.1/iqn.2001-04.com.example/0,if=none',
      '-drive', 'file=https://user:pw4@mirror.example/disk.img,readonly=on',
      '-hda', 'rbd:pool/img:id=admin:key=AQBsecret==:conf=/etc/ceph.conf',
      '-drive', 'file=json:{"driver":"ssh",,"password":"pw5",,"host":"h"},if=none',
      '-blockdev', '{"driver":"http","url":"http://u:pw6@h/x"}',
    ]),
    [
      '-object', `secret,id=s0,data=${REDACTED},format=raw`,
      '-object', `secret_keyring,id=s1,serial=12,data=${REDACTED}`,
      '-drive', `file=iscsi://h/t/0,file.password=${REDACTED},file.user=u,if=none`,
      '-spice', `port=5900,password=${REDACTED}`,
      '-object', 'tls-creds-x509,id=tls0,dir=/etc/pki,passwordid=s0',
      '-blockdev', JSON.stringify({ driver: 'rbd', pool: 'p', image: 'i', 'key-secret': 's0', server: [{ host: 'a', port: '6789' }], password: REDACTED }),
      '-drive', 'file=/a,,data=x.img,format=raw',
      '-device', 'virtio-blk-pci,drive=d0',
      '-drive', `file=iscsi://${REDACTED}@10.0.0.1/iqn.2001-04.com.example/0,if=none`,
      '-drive', `file=https://${REDACTED}@mirror.example/disk.img,readonly=on`,
      '-hda', `rbd:pool/img:id=admin:key=${REDACTED}:conf=/etc/ceph.conf`,
      '-drive', `file=json:${JSON.stringify({ driver: 'ssh', password: REDACTED, host: 'h' }).replace(/,/g, ',,')},if=none`,
      '-blockdev', JSON.stringify({ driver: 'http', url: `http://${REDACTED}@h/x` }),
    ],
  );
});
