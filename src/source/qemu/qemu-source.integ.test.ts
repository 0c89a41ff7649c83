/**
 * Live backup of a running QEMU (TCG, no guest OS; guest writes by HMP qemu-io through a
 * second QMP monitor): every disk at one instant, writes after the instant excluded,
 * incrementals that read only what the dirty bitmap marked, a capture abandoned by a killed
 * run that loses no change, and a full read with its reason when the checkpoint is gone or
 * was left inconsistent by a QEMU that was killed (a host crash).
 * The oracle is a model of each disk in memory, updated with every write the test makes.
 * The tests run in order and build on each other (each backup is the next one's parent):
 * run the file whole.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../../backup/index.js';
import { queryNamedBlockNodes, qemuIo, QmpClient } from '../../qmp/index.js';
import { LocalBackend, initRepository, openRepository, type Repository, type Snapshot } from '../../repo/index.js';
import { SnapshotDisk } from '../../restore/index.js';
import { requireTools, runTool, startTestVm, type TestVm } from '../../testing/index.js';
import { openQemuSource } from '../index.js';

const MiB = 1024 * 1024;
const KiB = 1024;
const SIZES = { disk0: 48 * MiB, disk1: 16 * MiB } as const;
type DiskName = keyof typeof SIZES;

let vm: TestVm;
let testMonitor: QmpClient;
let backupMonitor: string;
let repo: Repository;
let work: string;
const model: Record<DiskName, Buffer> = { disk0: Buffer.alloc(SIZES.disk0), disk1: Buffer.alloc(SIZES.disk1) };

before(async () => {
  await requireTools('qemu-system-x86_64', 'qemu-img');
  work = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'coffer-live-test-'));
  vm = await startLiveVm();
  repo = await newRepository(path.join(work, 'repo'));
});
after(async () => {
  await testMonitor?.close();
  await vm?.stop();
  await repo?.close();
  await fs.rm(work, { recursive: true, force: true });
});

async function startLiveVm(from?: Record<DiskName, string>): Promise<TestVm> {
  const dir = await fs.mkdtemp(path.join(work, 'vm-'));
  const testSocket = path.join(dir, 'test.qmp');
  const started = await startTestVm({
    disks: (Object.keys(SIZES) as DiskName[]).map((name) => ({ name, size: SIZES[name], ...(from ? { from: from[name] } : {}) })),
    extraArgs: ['-qmp', `unix:${testSocket},server=on,wait=off`],
  });
  backupMonitor = started.qmpSocket;
  testMonitor = await QmpClient.connect({ path: testSocket });
  return started;
}

/** Stops the VM (`quit`: cleanly; `kill`: SIGKILL, as a host crash) and starts it again on copies of its disks (each changed by `edit` first); the copies. */
async function restartVm(label: string, how: 'quit' | 'kill', edit?: (copy: string) => Promise<void>): Promise<Record<DiskName, string>> {
  if (how === 'quit') await testMonitor.execute('quit').catch(() => {});
  else process.kill(vm.pid, 'SIGKILL');
  await testMonitor.close();
  await vm.exited;
  const copies = {} as Record<DiskName, string>;
  for (const disk of vm.disks) {
    const copy = path.join(work, `${label}-${disk.name}.qcow2`);
    await fs.copyFile(disk.path, copy);
    await edit?.(copy);
    copies[disk.name as DiskName] = copy;
  }
  await vm.stop();
  vm = await startLiveVm(copies);
  return copies;
}

async function newRepository(location: string): Promise<Repository> {
  const backend = new LocalBackend(location);
  await initRepository(backend, { passphrase: 'live', kdf: { N: 1024, r: 8, p: 1 } });
  return openRepository(backend, { passphrase: 'live', threads: 2 });
}

/** A guest write of `length` bytes of `pattern` at `offset`, mirrored in the model. */
async function write(disk: DiskName, offset: number, length: number, pattern: number): Promise<void> {
  await qemuIo(testMonitor, { device: `${disk}-dev`, command: `write -P ${pattern} ${offset} ${length}` });
  model[disk].fill(pattern, offset, offset + length);
}

/** The model now, to compare a snapshot with the disks at its instant. */
function instant(): Record<DiskName, Buffer> {
  return { disk0: Buffer.from(model.disk0), disk1: Buffer.from(model.disk1) };
}

async function assertSnapshotEquals(snapshot: Snapshot, expected: Record<DiskName, Buffer>): Promise<void> {
  for (const name of Object.keys(SIZES) as DiskName[]) {
    const record = snapshot.disks.find((d) => d.name === `${name}-dev`);
    assert.ok(record, `disk ${name}-dev in the snapshot (has ${snapshot.disks.map((d) => d.name).join(', ')})`);
    const disk = new SnapshotDisk(repo, snapshot.id, record);
    const bytes = Buffer.from(await disk.read(0, disk.size));
    assert.equal(disk.size, SIZES[name]);
    assert.ok(bytes.equals(expected[name]), `${name}: the snapshot holds the disk at its instant (first difference at ${firstDifference(bytes, expected[name])})`);
  }
}

function firstDifference(a: Buffer, b: Buffer): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}

function checkpoints(snapshot: Snapshot): Map<string, string> {
  return new Map(snapshot.disks.flatMap((d) => (d.changeTracking?.checkpoint ? [[d.name, d.changeTracking.checkpoint] as const] : [])));
}

async function cofferBitmaps(): Promise<string[]> {
  const nodes = await queryNamedBlockNodes(testMonitor);
  return nodes.flatMap((n) => n.dirtyBitmaps.map((b) => `${n.nodeName}:${b.name}`)).filter((n) => n.includes(':coffer-')).sort();
}

let first: Snapshot;
let second: Snapshot;

test('a full backup holds both disks at one instant, not the writes made after it', async () => {
  await write('disk0', 1 * MiB, 64 * KiB, 0xa1);
  await write('disk0', 40 * MiB, 256 * KiB, 0xa2);
  await write('disk1', 0, 64 * KiB, 0xa3);
  const expected = instant();
  const source = await openQemuSource({ vm: 'live', qmp: { path: backupMonitor } });
  try {
    await write('disk0', 1 * MiB, 64 * KiB, 0xb1); // after the instant: must not be seen
    await write('disk1', 0, 4 * KiB, 0xb2);
    first = await backupVm(repo, source, { parent: null });
  } finally {
    await source.close();
  }
  assert.deepEqual(first.disks.map((d) => d.changeTracking?.method), ['none', 'none']);
  // The blocks the three writes before the instant touched (64, 256 and 64 KiB, aligned):
  // format 2 (the default) cuts a tracked disk into blocks of the bitmap's 64 KiB granularity
  // (docs/live-backup.md), format 1 keeps the repository's 256 KiB.
  const block = repo.config.version === 2 ? 64 * KiB : 256 * KiB;
  assert.deepEqual(first.disks.map((d) => d.blockSize), [block, block]);
  assert.equal(first.stats.bytesRead, block === 64 * KiB ? 6 * 64 * KiB : 3 * 256 * KiB, 'only the blocks holding data were read');
  await assertSnapshotEquals(first, expected);
  const definition = JSON.parse(Buffer.from(first.definition?.data ?? '', 'base64').toString('utf8')) as { devices?: unknown; commandLine?: { pid: number; argv: string[] } };
  assert.ok(definition.devices !== undefined, 'the VM definition is stored');
  assert.equal(definition.commandLine?.pid, vm.pid, 'with the command line of the QEMU behind the monitor');
  assert.ok(definition.commandLine?.argv.includes('-nodefaults'));
  assert.deepEqual(await cofferBitmaps(), [...checkpoints(first).values()].map((c, i) => `${['disk0', 'disk1'][i]}:${c}`).sort());
});

test('an incremental reads only what the dirty bitmap marked since the last backup', async () => {
  for (let i = 0; i < 6; i++) await write('disk0', (3 + 5 * i) * MiB, 4 * KiB, 0xc0 + i);
  const expected = instant();
  const source = await openQemuSource({ vm: 'live', qmp: { path: backupMonitor }, previous: checkpoints(first) });
  try {
    await write('disk0', 44 * MiB, 64 * KiB, 0xd1); // after this instant
    second = await backupVm(repo, source, { parent: first });
  } finally {
    await source.close();
  }
  assert.deepEqual(second.disks.map((d) => d.changeTracking?.method), ['dirty-bitmap', 'dirty-bitmap']);
  // Dirty since the first instant: 1 MiB (0xb1), disk1's 0xb2, and the six writes: one 64 KiB
  // granule each, read alone (the rest of each block comes from the parent's chunk).
  assert.equal(second.stats.bytesRead, 8 * 64 * KiB, `read ${second.stats.bytesRead} bytes`);
  await assertSnapshotEquals(second, expected);
  assert.deepEqual((await cofferBitmaps()).length, 2, 'only the newest checkpoints remain');
});

test('a run killed in the middle of its NBD reads loses no change, and its leftovers are cleared', async () => {
  await write('disk1', 8 * MiB, 64 * KiB, 0xe1);
  const script = `
    const { openQemuSource } = await import(${JSON.stringify(new URL('../index.js', import.meta.url).href)});
    const source = await openQemuSource({ vm: 'live', qmp: { path: ${JSON.stringify(backupMonitor)} }, previous: new Map(${JSON.stringify([...checkpoints(second)])}) });
    // Killed in the middle of NBD reads, as a backup would be: requests in flight on every disk.
    let reads = 0;
    for (;;) {
      await Promise.all(source.disks.map((d) => d.device.read((reads % 8) * 1048576, 1048576)));
      if (++reads === 2) process.stdout.write('reading\\n');
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('reading') && resolve());
    child.once('exit', (code) => reject(new Error(`the capturing process exited with ${code}`)));
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  await write('disk1', 9 * MiB, 64 * KiB, 0xe2); // after the abandoned capture
  const expected = instant();
  const source = await openQemuSource({ vm: 'live', qmp: { path: backupMonitor }, previous: checkpoints(second) });
  let third: Snapshot;
  try {
    third = await backupVm(repo, source, { parent: second });
  } finally {
    await source.close();
  }
  assert.deepEqual(third.disks.map((d) => d.changeTracking?.method), ['dirty-bitmap', 'dirty-bitmap']);
  await assertSnapshotEquals(third, expected);
  assert.deepEqual((await cofferBitmaps()).length, 2, 'the killed run\'s checkpoint and frozen copy are gone too');
  const nodes = await queryNamedBlockNodes(testMonitor);
  assert.ok(!nodes.some((n) => n.nodeName?.startsWith('coffer-fleece-')), 'no overlay left');
  second = third;
});

test('a VM restarted without its checkpoint bitmap is read in full, with the reason recorded', async () => {
  await restartVm('no-bitmaps', 'quit', async (copy) => {
    for (const bitmap of checkpoints(second).values()) await runTool('qemu-img', ['bitmap', '--remove', copy, bitmap]).catch(() => ''); // each disk has one of them
  });
  const expected = instant();
  const source = await openQemuSource({ vm: 'live', qmp: { path: backupMonitor }, previous: checkpoints(second) });
  let fourth: Snapshot;
  try {
    fourth = await backupVm(repo, source, { parent: second });
  } finally {
    await source.close();
  }
  second = fourth;
  assert.deepEqual(fourth.disks.map((d) => d.changeTracking?.method), ['none', 'none']);
  assert.match(fourth.disks[0]?.changeTracking?.reason ?? '', /checkpoint bitmap coffer-.* is missing/);
  await assertSnapshotEquals(fourth, expected);
});


test('guest writes racing the capture on both disks: the snapshot holds a prefix of them on each (one instant), and the VM never stops', async () => {
  const stops: unknown[] = [];
  const offStop = testMonitor.on('STOP', (e) => stops.push(e));
  // Writes alternate between the disks, each completed before the next is sent: a capture of
  // both disks at one instant holds the first N of them, whatever N; two instants could hold
  // a write on one disk without an earlier one on the other.
  const writes: { disk: DiskName; offset: number; pattern: number }[] = [];
  let captured = false;
  let afterCapture = 0;
  const writer = (async () => {
    for (let k = 0; k < 1400 && afterCapture < 20; k++) {
      const disk: DiskName = k % 2 === 0 ? 'disk0' : 'disk1';
      const offset = (disk === 'disk0' ? 30 * MiB : 12 * MiB) + Math.floor(k / 2) * 4 * KiB;
      const pattern = 1 + (k % 250);
      await write(disk, offset, 4 * KiB, pattern);
      writes.push({ disk, offset, pattern });
      if (captured) afterCapture += 1;
    }
  })();
  while (writes.length < 10) await new Promise((resolve) => setTimeout(resolve, 5));
  const source = await openQemuSource({ vm: 'live', qmp: { path: backupMonitor } });
  try {
    captured = true;
    await writer;
    const devices = Object.fromEntries(source.disks.map((d) => [d.name.replace(/-dev$/, ''), d.device]));
    const present: boolean[] = [];
    for (const w of writes) {
      const bytes = Buffer.from(await (devices[w.disk] as { read: (o: number, l: number) => Promise<Uint8Array> }).read(w.offset, 4 * KiB));
      present.push(bytes.every((b) => b === w.pattern));
    }
    const held = present.indexOf(false) === -1 ? present.length : present.indexOf(false);
    assert.ok(held >= 10, `the writes made before the capture are in it (${held} of ${writes.length})`);
    assert.ok(held < writes.length, 'some writes came after the instant');
    assert.deepEqual(present.slice(held).filter((p) => p).length, 0, `after the first write missing (#${held}), no later one is there: ${present.map((p) => (p ? 1 : 0)).join('')}`);
  } finally {
    await source.close();
    offStop();
  }
  assert.deepEqual(stops, [], 'QEMU never paused the VM');
});

test('after QEMU was killed (a host crash), its checkpoint bitmaps are inconsistent: the next backup reads in full, says why, and tracks again', async () => {
  const chained = checkpoints(second);
  assert.equal(chained.size, 2, 'the backup before holds a checkpoint per disk');
  // QEMU writes a persistent bitmap into the image when it stops cleanly, and marks the ones it
  // loads "in use" in the image until then: a clean stop, a start that loads them, a kill.
  await restartVm('saved', 'quit');
  await write('disk0', 5 * MiB, 64 * KiB, 0x71); // dirty in the bitmaps QEMU holds
  // A guest's flush: without it the kill may lose the write's new cluster (qcow2 keeps L2 updates in memory until then).
  await qemuIo(testMonitor, { device: 'disk0-dev', command: 'flush' });
  const copies = await restartVm('crashed', 'kill');
  // What qemu-img says of the image: the bitmap is there, flagged in use.
  const info = JSON.parse(await runTool('qemu-img', ['info', '--output=json', '--force-share', copies.disk0])) as { 'format-specific'?: { data?: { bitmaps?: { name: string; flags: string[] }[] } } };
  const bitmap = info['format-specific']?.data?.bitmaps?.find((b) => b.name === chained.get('disk0-dev'));
  assert.ok(bitmap?.flags.includes('in-use'), `the checkpoint bitmap is left in use: ${JSON.stringify(info['format-specific']?.data?.bitmaps)}`);
  const expected = instant();
  const source = await openQemuSource({ vm: 'live', qmp: { path: backupMonitor }, previous: chained });
  let full: Snapshot;
  try {
    full = await backupVm(repo, source, { parent: second });
  } finally {
    await source.close();
  }
  assert.deepEqual(full.disks.map((d) => d.changeTracking?.method), ['none', 'none']);
  for (const disk of full.disks) assert.match(disk.changeTracking?.reason ?? '', /checkpoint bitmap coffer-.* is inconsistent \(QEMU stopped without saving it\)/);
  await assertSnapshotEquals(full, expected);
  assert.equal((await cofferBitmaps()).length, 2, 'the inconsistent bitmaps are replaced by the new checkpoints');
  // And the next backup is an incremental again.
  await write('disk1', 2 * MiB, 64 * KiB, 0x72);
  const expectedNext = instant();
  const next = await openQemuSource({ vm: 'live', qmp: { path: backupMonitor }, previous: checkpoints(full) });
  let incremental: Snapshot;
  try {
    incremental = await backupVm(repo, next, { parent: full });
  } finally {
    await next.close();
  }
  assert.deepEqual(incremental.disks.map((d) => d.changeTracking?.method), ['dirty-bitmap', 'dirty-bitmap']);
  assert.equal(incremental.stats.bytesRead, 64 * KiB);
  await assertSnapshotEquals(incremental, expectedNext);
});
