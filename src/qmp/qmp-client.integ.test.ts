/**
 * QmpClient against a real QEMU (qemu-system-x86_64, TCG, no guest OS): negotiation, commands
 * in flight, QEMU's error classes, events, and a QEMU that stalls, is busy with another
 * client, or dies mid-command.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { isCofferError } from '../errors/index.js';
import { startTestVm, type TestVm } from '../testing/index.js';
import {
  QmpClient,
  isQmpCommandError,
  queryBlock,
  queryCommands,
  queryNamedBlockNodes,
  queryStatus,
  queryVersion,
  missingCommands,
  qemuIo,
  addDirtyBitmap,
  humanMonitorCommand,
} from './index.js';

const MiB = 1024 * 1024;
let vm: TestVm;
let qmp: QmpClient;

before(async () => {
  vm = await startTestVm({ disks: [{ name: 'disk0', size: 64 * MiB }] });
  qmp = await QmpClient.connect({ path: vm.qmpSocket });
});
after(async () => {
  await qmp?.close();
  await vm?.stop();
});

test('the greeting carries the version of the QEMU binary, and query-version agrees', async () => {
  const { stdout } = await promisify(execFile)('qemu-system-x86_64', ['--version']);
  const [, major, minor, micro] = /version (\d+)\.(\d+)\.(\d+)/.exec(stdout) ?? [];
  assert.deepEqual([qmp.greeting.version.major, qmp.greeting.version.minor, qmp.greeting.version.micro], [Number(major), Number(minor), Number(micro)]);
  assert.ok(qmp.greeting.capabilities.includes('oob'));
  assert.deepEqual(await queryVersion(qmp), qmp.greeting.version);
  const commands = await queryCommands(qmp);
  assert.ok(commands.has('blockdev-backup') && commands.has('block-export-add') && commands.has('transaction'));
  assert.deepEqual(await missingCommands(qmp, ['query-status', 'x-no-such-command']), ['x-no-such-command']);
});

test('many commands in flight at once each get their own answer', async () => {
  const calls = Array.from({ length: 24 }, (_, i) => {
    switch (i % 4) {
      case 0: return queryStatus(qmp).then((s) => `status:${s.status}`);
      case 1: return queryVersion(qmp).then((v) => `version:${v.major}`);
      case 2: return queryBlock(qmp).then((b) => `block:${b[0]?.inserted?.nodeName}`);
      default: return qmp.execute('nosuch-command').then(() => 'no error', (e: unknown) => (isQmpCommandError(e) ? `error:${e.errorClass}` : 'other'));
    }
  });
  const results = await Promise.all(calls);
  const expected = ['status:running', `version:${qmp.greeting.version.major}`, 'block:disk0', 'error:CommandNotFound'];
  assert.deepEqual(results, Array.from({ length: 24 }, (_, i) => expected[i % 4]));
});

test('QEMU errors come back as E_QMP_ERROR with their class', async () => {
  const cases: [string, Record<string, unknown> | undefined, string, RegExp][] = [
    ['nosuch', undefined, 'CommandNotFound', /The command nosuch has not been found/],
    ['query-block', { bogus: 1 }, 'GenericError', /Parameter 'bogus' is unexpected/],
    ['block-dirty-bitmap-remove', { node: 'disk0', name: 'absent' }, 'GenericError', /absent/],
    ['blockdev-del', { 'node-name': 'no-such-node' }, 'GenericError', /no-such-node/],
  ];
  for (const [command, args, errorClass, desc] of cases) {
    await assert.rejects(qmp.execute(command, args), (err) => {
      assert.ok(isQmpCommandError(err), String(err));
      assert.equal(err.code, 'E_QMP_ERROR');
      assert.equal(err.errorClass, errorClass);
      assert.match(err.desc, desc);
      assert.equal(err.command, command);
      return true;
    }, command);
  }
  assert.equal(qmp.closed, false);
});

test('stop and cont raise STOP and RESUME, subscribed before the command', async () => {
  const seen: string[] = [];
  const unsubscribe = qmp.on('*', (e) => seen.push(e.event));
  const stopped = qmp.waitForEvent('STOP');
  await qmp.execute('stop');
  const event = await stopped;
  assert.ok(event.timestampMicros > 1_600_000_000_000_000, 'a real timestamp');
  assert.deepEqual(await queryStatus(qmp), { running: false, status: 'paused' });
  const resumed = qmp.waitForEvent('RESUME');
  await qmp.execute('cont');
  await resumed;
  assert.deepEqual(await queryStatus(qmp), { running: true, status: 'running' });
  unsubscribe();
  assert.deepEqual(seen, ['STOP', 'RESUME']);
});

test('disks and dirty bitmaps as query-block and query-named-block-nodes report them', async () => {
  await addDirtyBitmap(qmp, { node: 'disk0', name: 'probe', persistent: true });
  await qemuIo(qmp, { device: 'disk0-dev', command: 'write -P 0x5a 3M 64k' });
  const [drive, ...others] = await queryBlock(qmp);
  assert.equal(others.length, 0);
  assert.equal(drive?.device, ''); // -blockdev disks have no legacy drive id
  assert.equal(drive?.qdev, 'disk0-dev');
  assert.equal(drive?.inserted?.nodeName, 'disk0');
  assert.equal(drive?.inserted?.format, 'qcow2');
  assert.equal(drive?.inserted?.virtualSize, 64 * MiB);
  assert.equal(drive?.inserted?.filename, vm.disks[0]?.path);
  assert.deepEqual(drive?.inserted?.dirtyBitmaps, [
    { name: 'probe', count: 64 * 1024, granularity: 64 * 1024, recording: true, busy: false, persistent: true, inconsistent: false },
  ]);
  const nodes = await queryNamedBlockNodes(qmp);
  const byName = new Map(nodes.map((n) => [n.nodeName, n]));
  assert.equal(byName.get('disk0')?.driver, 'qcow2');
  assert.equal(byName.get('disk0-file')?.driver, 'file');
  assert.deepEqual(byName.get('disk0')?.dirtyBitmaps.map((b) => b.name), ['probe']);
  await qmp.execute('block-dirty-bitmap-remove', { node: 'disk0', name: 'probe' });
});

test('HMP through QMP: qemu-io writes as the guest, and a bad device is E_QMP_ERROR', async () => {
  assert.match(await humanMonitorCommand(qmp, 'info version'), /\d+\.\d+\.\d+/);
  await assert.rejects(qemuIo(qmp, { device: 'no-such-dev', command: 'write 0 512' }), (err) => isCofferError(err, 'E_QMP_ERROR') && /no-such-dev/.test(err.message));
});

test('a second client waits for the greeting: E_TIMEOUT saying QEMU serves one client', async () => {
  await assert.rejects(QmpClient.connect({ path: vm.qmpSocket }, { timeoutMs: 300 }), (err) =>
    isCofferError(err, 'E_TIMEOUT') && /one client per monitor/.test(err.message));
  assert.equal((await queryStatus(qmp)).status, 'running'); // the first session is unharmed
});

test('a frozen QEMU (SIGSTOP): E_TIMEOUT; once thawed, the same connection works again', async () => {
  vm.signal('SIGSTOP');
  try {
    await assert.rejects(queryStatus(qmp, { timeoutMs: 300 }), (err) => isCofferError(err, 'E_TIMEOUT') && /query-status within 300 ms/.test(err.message));
  } finally {
    vm.signal('SIGCONT');
  }
  assert.equal((await queryStatus(qmp)).status, 'running');
});

test('QEMU killed mid-command: every pending command and waiter fails with E_CONNECTION_FAILED', async () => {
  const doomed = await startTestVm({ disks: [] });
  try {
    const client = await QmpClient.connect({ path: doomed.qmpSocket });
    doomed.signal('SIGSTOP'); // so the commands are surely still pending when QEMU dies
    const pending = [queryStatus(client), queryBlock(client), client.waitForEvent('SHUTDOWN')];
    await new Promise((r) => setTimeout(r, 50));
    doomed.signal('SIGKILL');
    for (const call of pending) {
      await assert.rejects(call, (err) => isCofferError(err, 'E_CONNECTION_FAILED') && /closed the connection.*before answering/.test(err.message));
    }
    assert.equal(client.closed, true);
    await assert.rejects(client.execute('query-status'), (err) => isCofferError(err, 'E_CONNECTION_FAILED'));
    await client.close();
  } finally {
    await doomed.stop();
  }
});

test('QMP over TCP on loopback works the same', async () => {
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(free));
    });
  });
  const tcpVm = await startTestVm({ disks: [], extraArgs: ['-qmp', `tcp:127.0.0.1:${port},server=on,wait=off`] });
  try {
    let client: QmpClient | undefined;
    for (let attempt = 0; client === undefined; attempt++) {
      // The unix monitor (which startTestVm waits for) may come up a moment before the TCP one.
      client = await QmpClient.connect({ host: '127.0.0.1', port }).catch((err: unknown) => {
        if (attempt >= 20 || !isCofferError(err, 'E_CONNECTION_FAILED')) throw err;
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 50));
      });
    }
    assert.equal(client.peer, `QMP at 127.0.0.1:${port}`);
    assert.equal((await queryStatus(client)).status, 'running');
    await client.close();
  } finally {
    await tcpVm.stop();
  }
});
