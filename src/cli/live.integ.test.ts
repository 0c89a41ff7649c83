/**
 * `coffer backup --qemu QMP_SOCKET` on a running QEMU (TCG, no guest OS): a full backup, then
 * an incremental that reads only the dirty blocks, each restored by `coffer restore` equal to
 * the disk as it was; a dead monitor gives a one-line error and exit code 3; a wrong
 * passphrase fails before the VM is touched.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { qemuIo, QmpClient } from '../qmp/index.js';
import { requireTools, startTestVm, type TestVm } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const env = { COFFER_PASSWORD: 'live cli' };
let vm: TestVm;
let monitor: QmpClient;
let work: string;
let repo: string;
const model = Buffer.alloc(SIZE);

before(async () => {
  await requireTools('qemu-system-x86_64', 'qemu-img');
  work = await makeWorkDir('live');
  repo = join(work, 'repo');
  vm = await startTestVm({ disks: [{ name: 'disk0', size: SIZE }], extraArgs: ['-qmp', `unix:${join(work, 'test.qmp')},server=on,wait=off`, '-name', 'web01'] });
  monitor = await QmpClient.connect({ path: join(work, 'test.qmp') });
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
});
after(async () => {
  await monitor?.close();
  await vm?.stop();
  await removeDir(work);
});

async function write(offset: number, length: number, pattern: number): Promise<void> {
  await qemuIo(monitor, { device: 'disk0-dev', command: `write -P ${pattern} ${offset} ${length}` });
  model.fill(pattern, offset, offset + length);
}

async function assertRestoresToModel(id: string): Promise<void> {
  const out = join(work, `${id}.raw`);
  assertExit(await coffer(['restore', '-r', repo, id, '--to', out], { env }), 0);
  assert.ok((await readFile(out)).equals(model), 'the restored disk equals the disk at the backup\'s instant');
  await removeDir(out);
}

interface LiveBackupJson extends BackupJson {
  disks: { name: string; changeTracking?: { method: string; reason?: string; checkpoint?: string } }[];
}

test('a full backup, then an incremental that reads only the blocks the guest wrote', async () => {
  await write(2 * MiB, 1 * MiB, 0x11);
  const full = await cofferJson<LiveBackupJson>(['backup', '-r', repo, '--vm', 'web01', '--qemu', vm.qmpSocket], { env, timeoutMs: 120_000 });
  assert.equal(full.bytesRead, 1 * MiB);
  assert.equal(full.disks[0]?.name, 'disk0-dev');
  assert.equal(full.disks[0]?.changeTracking?.method, 'none');
  assert.match(full.disks[0]?.changeTracking?.reason ?? '', /no checkpoint/);
  await assertRestoresToModel(full.id);

  await write(20 * MiB, 4096, 0x22);
  await write(30 * MiB, 4096, 0x33);
  const incremental = await cofferJson<LiveBackupJson>(['backup', '-r', repo, '--vm', 'web01', '--qemu', vm.qmpSocket], { env, timeoutMs: 120_000 });
  assert.equal(incremental.parent, full.id);
  assert.equal(incremental.disks[0]?.changeTracking?.method, 'dirty-bitmap');
  assert.equal(incremental.bytesRead, 2 * 64 * 1024, 'two dirty 64 KiB granules read (the rest of their blocks comes from the parent), nothing else');
  await assertRestoresToModel(incremental.id);

  const text = await coffer(['backup', '-r', repo, '--vm', 'web01', '--qemu', vm.qmpSocket], { env, timeoutMs: 120_000 });
  assertExit(text, 0);
  assert.match(text.stdout.toString('utf8'), /disk0-dev: read only what QEMU's dirty bitmap marked since the last backup/);
});

test('a monitor nobody listens on gives one line and exit code 3', async () => {
  const result = await coffer(['backup', '-r', repo, '--vm', 'web01', '--qemu', join(work, 'nothing.qmp')], { env });
  assertExit(result, 3);
  assertOneLineError(result);
  const both = await coffer(['backup', '-r', repo, '--vm', 'web01', '--qemu', vm.qmpSocket, '/some/disk.raw'], { env });
  assertExit(both, 2);
});

/** What a backup may leave on the VM: its block nodes with their dirty bitmaps, block jobs and NBD exports. */
async function vmState(): Promise<unknown> {
  const nodes = (await monitor.execute('query-named-block-nodes', { flat: true })) as { 'node-name': string; 'dirty-bitmaps'?: { name: string }[] }[];
  return {
    nodes: nodes.map((node) => `${node['node-name']}: ${(node['dirty-bitmaps'] ?? []).map((b) => b.name).sort().join(',')}`).sort(),
    jobs: await monitor.execute('query-block-jobs'),
    exports: await monitor.execute('query-block-exports'),
  };
}

test('a wrong passphrase fails with its exit code and leaves the VM as it was (no node, bitmap, job or export)', async () => {
  const before = await vmState();
  const wrong = await coffer(['backup', '-r', repo, '--vm', 'web01', '--qemu', vm.qmpSocket], { env: { COFFER_PASSWORD: 'not the passphrase' }, timeoutMs: 120_000 });
  assertExit(wrong, 12);
  assert.match(assertOneLineError(wrong), /passphrase opens none/);
  assert.deepEqual(await vmState(), before);
  assert.ok(JSON.stringify(before).includes('disk0'), 'the check sees the VM\'s disk node');
});

test('capture hooks run around the instant; a failing pre-capture hook stops the backup and loses nothing', async () => {
  const log = join(work, 'hooks.log');
  const ok = await cofferJson<LiveBackupJson>([
    'backup', '-r', repo, '--vm', 'web01', '--qemu', vm.qmpSocket,
    '--pre-capture', `echo "pre $COFFER_VM $COFFER_HOOK" >> ${log}`,
    '--post-capture', `echo "post $COFFER_VM $COFFER_HOOK" >> ${log}`,
  ], { env, timeoutMs: 120_000 });
  assert.equal(await readFile(log, 'utf8'), 'pre web01 pre-capture\npost web01 post-capture\n');

  await write(12 * MiB, 4096, 0x44);
  const refused = await coffer(['backup', '-r', repo, '--vm', 'web01', '--qemu', vm.qmpSocket, '--pre-capture', 'exit 7', '--post-capture', `echo post-after-failure >> ${log}`], { env, timeoutMs: 120_000 });
  assertExit(refused, 3);
  assert.match(assertOneLineError(refused), /pre-capture hook "exit 7" exited with 7/);
  assert.match(await readFile(log, 'utf8'), /post-after-failure\n$/, 'the post hook runs even when the capture failed');

  const next = await cofferJson<LiveBackupJson>(['backup', '-r', repo, '--vm', 'web01', '--qemu', vm.qmpSocket], { env, timeoutMs: 120_000 });
  assert.equal(next.parent, ok.id);
  assert.equal(next.disks[0]?.changeTracking?.method, 'dirty-bitmap');
  assert.equal(next.bytesRead, 64 * 1024, 'the write made before the refused backup is still tracked');
  await assertRestoresToModel(next.id);
});

test('--scratch-dir puts the capture\'s scratch images there; a scratch filesystem without room is refused before the VM is touched', async () => {
  const scratch = join(work, 'scratch');
  await mkdir(scratch);
  const state = await vmState();
  const refused = await coffer(['backup', '-r', repo, '--vm', 'web01', '--qemu', vm.qmpSocket, '--scratch-dir', scratch, '--scratch-min-free', '1T'], { env, timeoutMs: 120_000 });
  assertExit(refused, 5);
  assert.match(assertOneLineError(refused), new RegExp(`scratch folder ${scratch}/coffer-live-[0-9a-f]+ has .* free; a live backup needs at least 2\\.0 TiB there`));
  assert.deepEqual(await vmState(), state, 'nothing changed in QEMU');

  await write(5 * MiB, 64 * 1024, 0x55);
  // The hook runs while the capture lives: it sees the overlay in the scratch folder.
  const seen = join(work, 'scratch-seen');
  const ok = await cofferJson<LiveBackupJson>(['backup', '-r', repo, '--vm', 'web01', '--qemu', vm.qmpSocket, '--scratch-dir', scratch, '--post-capture', `ls ${scratch}/*/ > ${seen}`], { env, timeoutMs: 120_000 });
  assert.match(await readFile(seen, 'utf8'), /fleece-0\.qcow2/);
  assert.deepEqual(await readdir(scratch), [], 'the VM\'s scratch folder goes when the backup ends');
  await assertRestoresToModel(ok.id);

  for (const args of [['--scratch-dir', scratch, '/some/disk.raw'], ['--qemu', vm.qmpSocket, '--scratch-min-free', '12 apples']]) {
    const usage = await coffer(['backup', '-r', repo, '--vm', 'web01', ...args], { env });
    assertExit(usage, 2);
    assert.match(assertOneLineError(usage), /--scratch-(dir|min-free)/);
  }
});

test('coffer snapshots --json says how each disk was read, and why a full read happened', async () => {
  const listed = await cofferJson<{ id: string; disks: { name: string; changeTracking?: { method: string; reason?: string; checkpoint?: string } }[] }[]>(['snapshots', '-r', repo, '--vm', 'web01'], { env });
  const tracking = listed.map((s) => s.disks[0]?.changeTracking);
  assert.equal(tracking[0]?.method, 'none');
  assert.match(tracking[0]?.reason ?? '', /no checkpoint/);
  assert.equal(tracking[1]?.method, 'dirty-bitmap');
  assert.ok(tracking.every((t) => t?.checkpoint?.startsWith('coffer-')), 'each names the checkpoint it left');
});
