/**
 * Format 2 backups of a running QEMU (TCG, no guest OS; guest writes by HMP qemu-io through
 * a second QMP monitor) cut the disk into blocks of the checkpoint bitmap's granularity
 * (64 KiB, tracked-block-size.ts): an incremental after scattered 4 KiB writes reads and
 * stores exactly the dirty granules, never patching a block out of its parent, and restores
 * bit-identical (`qemu-img compare` against the disk as the guest had it at the instant).
 * A parent cut into other blocks (a snapshot made before this rule, or by a source without
 * a granularity) is read in full once, with the reason recorded, and restores as well.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { openDiskTarget } from '../disk/index.js';
import { qemuIo, QmpClient } from '../qmp/index.js';
import { DiskIndexReader, isLocatedEntry, LocalBackend, initRepository, openRepository, type Repository, type Snapshot } from '../repo/index.js';
import { restoreDisk, SnapshotDisk } from '../restore/index.js';
import { openQemuSource, type VmSource } from '../source/index.js';
import { makeTempDir, requireTools, runTool, seededRandom, startTestVm, type TestVm } from '../testing/index.js';
import { backupVm } from './index.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const DISK_SIZE = 32 * MiB;
const GRANULE = 64 * KiB;
const DISK = 'disk0-dev';

let work: { path: string; remove(): Promise<void> };
let vm: TestVm | undefined;
let monitor: QmpClient | undefined;
let repo: Repository | undefined;
/** The guest's disk as the test wrote it: the oracle. */
const model = Buffer.alloc(DISK_SIZE);
let restores = 0;

before(async () => {
  await requireTools('qemu-system-x86_64', 'qemu-img');
  work = await makeTempDir('coffer-tracked-blocks');
  // Incompressible, distinct data in the first 20 MiB (no two blocks alike), zeros after.
  const random = seededRandom(0x5eed64);
  for (let i = 0; i < 20 * MiB; i += 4) model.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
  const raw = path.join(work.path, 'base.raw');
  const qcow2 = path.join(work.path, 'base.qcow2');
  await fs.writeFile(raw, model);
  await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  await fs.rm(raw);
  const testSocket = path.join(work.path, 'test.qmp');
  vm = await startTestVm({ disks: [{ name: 'disk0', size: DISK_SIZE, from: qcow2 }], extraArgs: ['-qmp', `unix:${testSocket},server=on,wait=off`] });
  monitor = await QmpClient.connect({ path: testSocket });
  const backend = new LocalBackend(path.join(work.path, 'repo'));
  await initRepository(backend, { passphrase: 'live', kdf: { N: 1024, r: 8, p: 1 }, format: 2 });
  repo = await openRepository(backend, { passphrase: 'live', threads: 2 });
});
after(async () => {
  await monitor?.close();
  await vm?.stop();
  await repo?.close();
  await work?.remove();
});

/** A guest write of `length` bytes of `pattern` at `offset`, mirrored in the model. */
async function write(offset: number, length: number, pattern: number): Promise<void> {
  await qemuIo(monitor as QmpClient, { device: DISK, command: `write -P ${pattern} ${offset} ${length}` });
  model.fill(pattern, offset, offset + length);
}

/**
 * Backs the VM up from `parent`'s checkpoint; `at` runs right after the instant of capture
 * (its writes must not be in the snapshot). Returns the snapshot and the model at the instant.
 */
async function backup(parent: Snapshot | null, options: { at?: () => Promise<void>; hideGranularity?: boolean } = {}): Promise<{ snapshot: Snapshot; expected: Buffer }> {
  const previous = new Map(parent?.disks.flatMap((d) => (d.changeTracking?.checkpoint ? [[d.name, d.changeTracking.checkpoint] as const] : [])) ?? []);
  const expected = Buffer.from(model);
  const source = await openQemuSource({ vm: 'live', qmp: { path: (vm as TestVm).qmpSocket }, previous });
  try {
    await options.at?.();
    // A source that gives no granularity: the repository's block size, as before this rule.
    const used: VmSource = options.hideGranularity
      ? { vm: source.vm, definition: source.definition, disks: source.disks.map(({ changeGranularity: _, ...disk }) => disk), commit: () => source.commit?.() ?? Promise.resolve(), close: () => source.close() }
      : source;
    return { snapshot: await backupVm(repo as Repository, used, { parent }), expected };
  } finally {
    await source.close();
  }
}

/** Restores the snapshot's disk to a raw file and compares it with `expected` by `qemu-img compare`. */
async function assertRestoresTo(snapshot: Snapshot, expected: Buffer): Promise<void> {
  const record = snapshot.disks.find((d) => d.name === DISK);
  assert.ok(record, `disk ${DISK} in the snapshot`);
  restores += 1;
  const want = path.join(work.path, `want-${restores}.raw`);
  const got = path.join(work.path, `got-${restores}.raw`);
  await fs.writeFile(want, expected);
  const target = await openDiskTarget(got, record.size, { format: 'raw', overwrite: false });
  await restoreDisk(new SnapshotDisk(repo as Repository, snapshot.id, record), target, { threads: 2 }); // finishes the target
  try {
    await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', want, got]); // exits 1 on any difference
  } finally {
    await fs.rm(want, { force: true });
    await fs.rm(got, { force: true });
  }
}

function diskOf(snapshot: Snapshot) {
  const record = snapshot.disks.find((d) => d.name === DISK);
  assert.ok(record);
  return record;
}

let last: Snapshot;

test('a format 2 full backup of a live disk is cut into blocks of the bitmap granularity', async () => {
  const { snapshot, expected } = await backup(null, { at: () => write(1 * MiB, 4 * KiB, 0xee) });
  assert.equal(diskOf(snapshot).blockSize, GRANULE);
  assert.equal(snapshot.stats.bytesRead, 20 * MiB, 'only the allocated data was read');
  assert.equal(snapshot.stats.bytesNew, 20 * MiB, 'every distinct 64 KiB block stored once');
  // Frames still hold 2 MiB (32 blocks of 64 KiB, not 8): one compression and one decode per 2 MiB.
  const index = new DiskIndexReader(repo as Repository, diskOf(snapshot));
  const frames = new Set<string>();
  for (let block = 0; block < index.blockCount; block++) {
    const entry = await index.rawEntry(block);
    // A located entry (docs/repository-format.md §19.3): pack id at 32, frame offset at 64.
    if (isLocatedEntry(entry)) frames.add(`${entry.subarray(32, 64).toString('hex')}@${entry.readUInt32LE(64)}`);
  }
  assert.ok(frames.size >= 10 && frames.size <= 12, `${frames.size} frames for 20 MiB (frames of 8 blocks would make 40)`);
  await assertRestoresTo(snapshot, expected);
  last = snapshot;
});

test('an incremental after scattered 4 KiB writes reads and stores only the dirty granules', async () => {
  const random = seededRandom(0x64);
  const granules = new Set<number>([Math.floor((1 * MiB) / GRANULE)]); // the write made after the full's instant
  for (let i = 0; i < 48; i++) {
    const offset = Math.floor(random() * (DISK_SIZE / (4 * KiB))) * 4 * KiB;
    await write(offset, 4 * KiB, 1 + i);
    granules.add(Math.floor(offset / GRANULE));
  }
  const { snapshot, expected } = await backup(last, { at: () => write(30 * MiB, 4 * KiB, 0xef) });
  const disk = diskOf(snapshot);
  assert.equal(disk.changeTracking?.method, 'dirty-bitmap');
  assert.equal(disk.blockSize, GRANULE);
  assert.equal(snapshot.stats.bytesRead, granules.size * GRANULE, 'each dirty granule read once, whole');
  // Every dirty granule is a block with new content; nothing else is stored (256 KiB blocks
  // would store up to 4 times as much, 2 MiB frames of the parent would be decoded to patch).
  assert.equal(snapshot.stats.bytesNew, granules.size * GRANULE, `stored ${snapshot.stats.bytesNew} bytes for ${granules.size} dirty granules`);
  await assertRestoresTo(snapshot, expected);
  last = snapshot;
});

test('a parent cut into other blocks is read in full once, both ways, and each snapshot restores', async () => {
  // 64 KiB parent, 256 KiB child (a source without a granularity).
  await write(5 * MiB + 8 * KiB, 4 * KiB, 0xd1);
  const wide = await backup(last, { hideGranularity: true, at: () => write(6 * MiB, 4 * KiB, 0xd2) });
  const wideDisk = diskOf(wide.snapshot);
  assert.equal(wideDisk.blockSize, 256 * KiB);
  assert.equal(wideDisk.changeTracking?.method, 'none');
  assert.match(wideDisk.changeTracking?.reason ?? '', /64 KiB blocks, this backup into 256 KiB: read in full once/);
  assert.ok(wide.snapshot.stats.bytesRead >= 20 * MiB, 'read in full');
  await assertRestoresTo(wide.snapshot, wide.expected);

  // 256 KiB parent (as every snapshot made before this rule), 64 KiB child.
  await write(12 * MiB + 4 * KiB, 4 * KiB, 0xd3);
  const narrow = await backup(wide.snapshot);
  const narrowDisk = diskOf(narrow.snapshot);
  assert.equal(narrowDisk.blockSize, GRANULE);
  assert.equal(narrowDisk.changeTracking?.method, 'none');
  assert.match(narrowDisk.changeTracking?.reason ?? '', /256 KiB blocks, this backup into 64 KiB/);
  await assertRestoresTo(narrow.snapshot, narrow.expected);

  // And the chain is incremental again from there.
  await write(25 * MiB, 4 * KiB, 0xd4);
  const next = await backup(narrow.snapshot);
  assert.equal(diskOf(next.snapshot).changeTracking?.method, 'dirty-bitmap');
  assert.equal(next.snapshot.stats.bytesRead, GRANULE, 'the one granule written since');
  await assertRestoresTo(next.snapshot, next.expected);
});
