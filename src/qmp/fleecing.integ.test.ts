/**
 * Every QMP call a live backup makes, proved against a real QEMU and read back by real NBD
 * clients (nbdcopy, nbdinfo): the fleecing setup of shared/notes/test-disks.md done with the
 * typed layer, a full round then an incremental round, each in ONE transaction, and the
 * teardown. The orchestration itself (names, failure handling, checkpoints) is source/'s job.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { requireTools, runTool, startTestVm, type TestVm } from '../testing/index.js';
import {
  QmpClient,
  bitmapAction,
  bitmapAddAction,
  bitmapMergeAction,
  blockExportAdd,
  blockExportDel,
  blockJobCancel,
  blockdevAdd,
  blockdevBackupAction,
  blockdevDel,
  fleecingOverlayOptions,
  isQmpCommandError,
  nbdServerStart,
  nbdServerStop,
  qemuIo,
  queryBlockExports,
  queryBlockJobs,
  queryJobs,
  queryNamedBlockNodes,
  removeDirtyBitmap,
  transaction,
  enableDirtyBitmap,
  disableDirtyBitmap,
  clearDirtyBitmap,
  type DirtyBitmapInfo,
  type QmpEvent,
} from './index.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const SIZE = 32 * MiB;
let vm: TestVm;
let qmp: QmpClient;
let nbdSocket: string;

before(async () => {
  await requireTools('qemu-img', 'nbdcopy', 'nbdinfo');
  vm = await startTestVm({ disks: [{ name: 'disk0', size: SIZE }] });
  qmp = await QmpClient.connect({ path: vm.qmpSocket });
  nbdSocket = path.join(vm.dir, 'nbd.sock');
});
after(async () => {
  await qmp?.close();
  await vm?.stop();
});

/** The whole export, read by nbdcopy. */
async function readExport(name: string): Promise<Buffer> {
  const out = path.join(vm.dir, `${name}.raw`);
  await runTool('nbdcopy', [`nbd+unix:///${name}?socket=${nbdSocket}`, out]);
  const bytes = await fs.readFile(out);
  await fs.rm(out);
  return bytes;
}

/** The dirty bitmaps of the live disk's node, by name. */
async function bitmaps(): Promise<Map<string, DirtyBitmapInfo>> {
  const disk = (await queryNamedBlockNodes(qmp)).find((n) => n.nodeName === 'disk0');
  return new Map((disk?.dirtyBitmaps ?? []).map((b) => [b.name ?? '', b]));
}

/** Creates the overlay file and adds it as node `node`, backed by the live disk. */
async function addOverlay(node: string): Promise<void> {
  const file = path.join(vm.dir, `${node}.qcow2`);
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', file, String(SIZE)]);
  await blockdevAdd(qmp, fleecingOverlayOptions(node, { filename: file, backingNode: 'disk0' }));
}

/** Teardown in the order of the notes; returns the job's status changes seen meanwhile. */
async function tearDown(exportId: string, jobId: string, overlay: string): Promise<void> {
  await blockExportDel(qmp, exportId); // waits for BLOCK_EXPORT_DELETED
  const cancelled = qmp.waitForEvent('BLOCK_JOB_CANCELLED', (e) => e.data['device'] === jobId);
  await blockJobCancel(qmp, jobId);
  const event = await cancelled;
  assert.equal(event.data['type'], 'backup');
  await blockdevDel(qmp, overlay);
}

test('round 1: checkpoint bitmap + fleecing job in one transaction; the export shows the disk at that instant', async () => {
  await qemuIo(qmp, { device: 'disk0-dev', command: 'write -P 0xa1 1M 64k' });
  await qemuIo(qmp, { device: 'disk0-dev', command: 'write -P 0xa2 20M 128k' });
  await addOverlay('fleece1');

  const jobEvents: string[] = [];
  const stopJobEvents = qmp.on('JOB_STATUS_CHANGE', (e: QmpEvent) => {
    if (e.data['id'] === 'fleece1-job') jobEvents.push(String(e.data['status']));
  });
  const running = qmp.waitForEvent('JOB_STATUS_CHANGE', (e) => e.data['id'] === 'fleece1-job' && e.data['status'] === 'running');
  await transaction(qmp, [
    bitmapAddAction({ node: 'disk0', name: 'cp1', persistent: true }),
    blockdevBackupAction({ jobId: 'fleece1-job', device: 'disk0', target: 'fleece1', sync: 'none' }),
  ]);
  await running;

  // The guest writes after the instant of capture: the live disk changes, the export must not.
  await qemuIo(qmp, { device: 'disk0-dev', command: 'write -P 0xb1 1M 64k' });
  await qemuIo(qmp, { device: 'disk0-dev', command: 'write -z 20M 64k' });

  const [job, ...otherJobs] = await queryBlockJobs(qmp);
  assert.equal(otherJobs.length, 0);
  assert.equal(job?.id, 'fleece1-job');
  assert.equal(job?.type, 'backup');
  assert.equal(job?.status, 'running');
  assert.deepEqual((await queryJobs(qmp)).map((j) => [j.id, j.type, j.status]), [['fleece1-job', 'backup', 'running']]);
  const cp1 = (await bitmaps()).get('cp1');
  assert.equal(cp1?.persistent, true);
  assert.equal(cp1?.recording, true);
  assert.equal(cp1?.count, 128 * KiB, 'cp1 saw exactly the two 64 KiB writes made after it');

  await nbdServerStart(qmp, { path: nbdSocket });
  await assert.rejects(nbdServerStart(qmp, { path: nbdSocket }), (err) => isQmpCommandError(err, 'GenericError'), 'one NBD server per QEMU');
  await blockExportAdd(qmp, { id: 'exp1', nodeName: 'fleece1', name: 'disk0', writable: false });
  assert.deepEqual(await queryBlockExports(qmp), [{ id: 'exp1', type: 'nbd', nodeName: 'fleece1', shuttingDown: false }]);

  // The live disk, exported beside it, does hold the new writes.
  await blockExportAdd(qmp, { id: 'live', nodeName: 'disk0', name: 'live' });
  const live = await readExport('live');
  assert.ok(live.subarray(1 * MiB, 1 * MiB + 64 * KiB).every((b) => b === 0xb1));
  assert.ok(live.subarray(20 * MiB, 20 * MiB + 64 * KiB).every((b) => b === 0));
  assert.ok(live.subarray(20 * MiB + 64 * KiB, 20 * MiB + 128 * KiB).every((b) => b === 0xa2));
  await blockExportDel(qmp, 'live');

  const snapshot = await readExport('disk0');
  assert.equal(snapshot.length, SIZE);
  assert.ok(snapshot.subarray(1 * MiB, 1 * MiB + 64 * KiB).every((b) => b === 0xa1), 'the old data at 1M, not 0xb1');
  assert.ok(snapshot.subarray(20 * MiB, 20 * MiB + 128 * KiB).every((b) => b === 0xa2), 'the old data at 20M, not zeros');
  assert.ok(snapshot.subarray(0, 1 * MiB).every((b) => b === 0));

  await tearDown('exp1', 'fleece1-job', 'fleece1');
  stopJobEvents();
  assert.equal(jobEvents[0], 'created');
  assert.ok(jobEvents.includes('running') && jobEvents.includes('aborting'), jobEvents.join(' '));
  assert.equal(jobEvents.at(-1), 'null', 'auto-dismissed');
  assert.deepEqual(await queryBlockJobs(qmp), []);
  assert.deepEqual(await queryBlockExports(qmp), []);
  assert.ok(!(await queryNamedBlockNodes(qmp)).some((n) => n.nodeName === 'fleece1'));
  assert.ok((await bitmaps()).has('cp1'), 'the checkpoint stays');
});

test('round 2: incremental, with a frozen copy of the checkpoint exported as qemu:dirty-bitmap', async () => {
  await qemuIo(qmp, { device: 'disk0-dev', command: 'write -P 0xc1 8M 64k' }); // dirty since cp1
  await addOverlay('fleece2');
  await transaction(qmp, [
    bitmapAddAction({ node: 'disk0', name: 'cp2', persistent: true }),
    bitmapAddAction({ node: 'disk0', name: 'temp2', disabled: true }),
    bitmapMergeAction({ node: 'disk0', target: 'temp2', bitmaps: ['cp1'] }),
    bitmapAction('disable', { node: 'disk0', name: 'cp1' }),
    blockdevBackupAction({ jobId: 'fleece2-job', device: 'disk0', target: 'fleece2', sync: 'none' }),
  ]);
  await qemuIo(qmp, { device: 'disk0-dev', command: 'write -P 0xd1 12M 64k' }); // after the instant: only in cp2

  const before = await bitmaps();
  assert.deepEqual([before.get('cp1')?.recording, before.get('temp2')?.recording, before.get('cp2')?.recording], [false, false, true]);
  assert.equal(before.get('temp2')?.count, 192 * KiB, 'temp2 = cp1 at the instant: 1M, 20M, 8M');
  assert.equal(before.get('cp2')?.count, 64 * KiB);

  await blockExportAdd(qmp, { id: 'exp2', nodeName: 'fleece2', name: 'disk0', bitmaps: ['temp2'] });
  assert.equal((await bitmaps()).get('temp2')?.busy, true, 'an exported bitmap is busy');
  await assert.rejects(removeDirtyBitmap(qmp, { node: 'disk0', name: 'temp2' }), (err) => isQmpCommandError(err, 'GenericError'));

  const map = JSON.parse(await runTool('nbdinfo', ['--json', '--map=qemu:dirty-bitmap:temp2', `nbd+unix:///disk0?socket=${nbdSocket}`])) as
    { offset: number; length: number; type: number }[];
  const dirty = map.filter((e) => e.type !== 0).map((e) => [e.offset / MiB, e.length / KiB]);
  assert.deepEqual(dirty, [[1, 64], [8, 64], [20, 64]], 'dirty since cp1 and before the instant, never 12M');
  const snapshot = await readExport('disk0');
  assert.ok(snapshot.subarray(8 * MiB, 8 * MiB + 64 * KiB).every((b) => b === 0xc1));
  assert.ok(snapshot.subarray(12 * MiB, 12 * MiB + 64 * KiB).every((b) => b === 0), 'the write after the instant is not seen');

  await tearDown('exp2', 'fleece2-job', 'fleece2');
  // The backup succeeded: drop the old checkpoint and the frozen copy; cp2 is the new checkpoint.
  await removeDirtyBitmap(qmp, { node: 'disk0', name: 'temp2' });
  await removeDirtyBitmap(qmp, { node: 'disk0', name: 'cp1' });
  await nbdServerStop(qmp);
  assert.deepEqual([...(await bitmaps()).keys()], ['cp2']);
});

test('enable, disable and clear a bitmap; a failing action leaves the whole transaction undone', async () => {
  const ref = { node: 'disk0', name: 'cp2' };
  await disableDirtyBitmap(qmp, ref);
  assert.equal((await bitmaps()).get('cp2')?.recording, false);
  await enableDirtyBitmap(qmp, ref);
  assert.equal((await bitmaps()).get('cp2')?.recording, true);
  await clearDirtyBitmap(qmp, ref);
  assert.equal((await bitmaps()).get('cp2')?.count, 0);

  await assert.rejects(transaction(qmp, [
    bitmapAddAction({ node: 'disk0', name: 'never', persistent: true }),
    blockdevBackupAction({ jobId: 'doomed', device: 'disk0', target: 'no-such-node', sync: 'none' }),
  ]), (err) => isQmpCommandError(err, 'GenericError') && /no-such-node/.test(err.desc));
  assert.equal((await bitmaps()).has('never'), false);
  assert.deepEqual(await queryBlockJobs(qmp), []);
});
