import assert from 'node:assert/strict';
import { open, readFile, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../backup/index.js';
import { isCofferError } from '../errors/index.js';
import { decodeLocatedEntry, DiskIndexReader, FrameReader, imageFrameSlotBytes, initRepository, isLocatedEntry, isZeroEntry, LocalBackend, openRepository, packKey, type Repository, type Snapshot } from '../repo/index.js';
import { openImageSource } from '../source/index.js';
import { seededBytes, tempFolders } from '../testing/index.js';
import { NbdBlockDevice, NbdServer } from '../nbd/index.js';
import { SnapshotDisk } from './snapshot-disk.js';

const tempFolder = tempFolders();
const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;
const DISK = 12 * MiB;

/**
 * One format 2 repository shared by the tests: a full backup of a 12 MiB disk (blocks of
 * 64 KiB, so 8-block frames of 512 KiB), then every third block rewritten and an incremental
 * (its new frames hold blocks from all over the disk, its other blocks point into the
 * full's frames: the frame pattern `coffer serve` reads slowly without read-ahead).
 */
let root: string;
let repo: Repository;
let full: Snapshot;
let incremental: Snapshot;
let fullBytes: Buffer;
let incrementalBytes: Buffer;

before(async () => {
  root = await tempFolder('coffer-sdisk-repo');
  const backend = new LocalBackend(root);
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  const image = join(await tempFolder('coffer-sdisk-img'), 'disk.raw');
  await writeFile(image, '');
  await truncate(image, DISK);
  const handle = await open(image, 'r+');
  try {
    // Every block different (no block dedups against another: each frame is needed by one run of blocks); the last 3 MiB stay zero.
    for (let block = 0; (block + 1) * BLOCK <= DISK - 3 * MiB; block++) await handle.write(textLike(block, BLOCK), 0, BLOCK, block * BLOCK);
    full = await backup(image);
    fullBytes = await readFile(image);
    for (let block = 1; block * BLOCK < DISK; block += 3) await handle.write(seededBytes(block, 4 * KiB), 0, 4 * KiB, block * BLOCK + 1000);
  } finally {
    await handle.close();
  }
  incremental = await backup(image);
  incrementalBytes = await readFile(image);
});

after(async () => {
  await repo?.close();
});

async function backup(image: string): Promise<Snapshot> {
  const source = await openImageSource('vm', [image]);
  try {
    return await backupVm(repo, source);
  } finally {
    await source.close();
  }
}

/** Compressible bytes that differ per seed. */
function textLike(seed: number, length: number): Buffer {
  const random = seededBytes(seed, length);
  const out = Buffer.alloc(length);
  const words = ['alpha ', 'beta ', 'gamma ', `v${seed} `, 'lorem\n'];
  for (let i = 0, at = 0; at < length; i++) at += out.write(words[(random[i % length] as number) % words.length] as string, at);
  return out;
}

/** Reads the disk a block at a time with `inFlight` reads outstanding, as an NBD client does. */
async function readSequentially(disk: SnapshotDisk, inFlight: number): Promise<Buffer> {
  const out = Buffer.alloc(disk.size);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const offset = next;
      next += BLOCK;
      if (offset >= disk.size) return;
      const data = await disk.read(offset, Math.min(BLOCK, disk.size - offset));
      out.set(data, offset);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return out;
}

/** The distinct frames the disk's blocks point into. */
async function framesOf(snapshot: Snapshot): Promise<number> {
  const index = new DiskIndexReader(repo, snapshot.disks[0] as Snapshot['disks'][number]);
  const frames = new Set<string>();
  for (let block = 0; block < index.blockCount; block++) {
    const raw = await index.rawEntry(block);
    if (!isLocatedEntry(raw) || isZeroEntry(raw)) continue;
    const location = decodeLocatedEntry(raw, 'test');
    frames.add(`${location.pack.toString('hex')}@${location.frameOffset}`);
  }
  return frames.size;
}

for (const which of ['full', 'incremental'] as const) {
  test(`snapshot disk read-ahead (${which}): the right bytes, frames fetched ahead, each frame fetched once, the frame cache's budget held`, async () => {
    const snapshot = which === 'full' ? full : incremental;
    const disk = new SnapshotDisk(repo, snapshot.id, snapshot.disks[0] as Snapshot['disks'][number], { readAhead: true });
    try {
      const read = await readSequentially(disk, 4);
      assert.ok(read.equals(which === 'full' ? fullBytes : incrementalBytes), 'bytes differ');
      assert.ok(disk.frameCache.readAhead > 0, 'no frame was fetched ahead');
      // A full snapshot's frames are met in order: each is fetched once. An incremental's
      // blocks alternate between its own frames and its parent's, and with 4 reads in flight
      // a parent frame already read can, depending on timing, leave the cache before its last
      // block is asked for (seen: 27 fetches of 26 frames, 2026-11-26): at most one in ten again.
      const frames = await framesOf(snapshot);
      if (which === 'full') assert.equal(disk.frameCache.fetched.frames, frames);
      else assert.ok(disk.frameCache.fetched.frames >= frames && disk.frameCache.fetched.frames <= frames + Math.ceil(frames / 10), `${disk.frameCache.fetched.frames} fetches of ${frames} frames`);
      assert.ok(disk.frameCache.allocatedBytes <= disk.frameCache.budgetBytes, `${disk.frameCache.allocatedBytes} bytes of frames, budget ${disk.frameCache.budgetBytes}`);
    } finally {
      await disk.close();
    }
  });
}

test('snapshot disk read-ahead: random reads fetch nothing ahead; without the option nothing is fetched ahead', async () => {
  const record = incremental.disks[0] as Snapshot['disks'][number];
  const random = new SnapshotDisk(repo, incremental.id, record, { readAhead: true });
  for (const block of [140, 2, 141, 1]) { // each more than 8 MiB (128 blocks) from the one before
    assert.ok(Buffer.from(await random.read(block * BLOCK, BLOCK)).equals(incrementalBytes.subarray(block * BLOCK, (block + 1) * BLOCK)));
  }
  assert.equal(random.frameCache.readAhead, 0);
  const plain = new SnapshotDisk(repo, incremental.id, record);
  assert.ok((await readSequentially(plain, 4)).equals(incrementalBytes));
  assert.equal(plain.frameCache.readAhead, 0);
});

test('frame reader read-ahead never allocates past its budget and yields to busy frames', async () => {
  const record = full.disks[0] as Snapshot['disks'][number];
  const index = new DiskIndexReader(repo, record);
  const entries = new Map<string, Buffer>(); // one entry per frame
  for (let block = 0; block < index.blockCount; block++) {
    const raw = await index.rawEntry(block);
    if (!isLocatedEntry(raw) || isZeroEntry(raw)) continue;
    const location = decodeLocatedEntry(raw, 'test');
    const key = `${location.pack.toString('hex')}@${location.frameOffset}`;
    if (!entries.has(key)) entries.set(key, raw);
  }
  assert.ok(entries.size >= 6, `${entries.size} frames`);
  const reader = new FrameReader(repo, 2 * reader2SlotBytes());
  const first = [...entries.values()];
  const started = first.map((entry) => reader.prefetch(entry));
  // Two slots: two frames start, the others find every slot busy and are skipped.
  assert.deepEqual(started.slice(0, 3), [true, true, false]);
  assert.ok(reader.allocatedBytes <= 2 * reader2SlotBytes());
  const target = new Uint8Array(BLOCK);
  await reader.read(first[0] as Buffer, target);
  assert.ok(Buffer.from(target).equals(fullBytes.subarray(0, BLOCK)));
  // The second frame, fetched ahead and not read yet, keeps its slot against more read-ahead.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual([reader.prefetch(first[3] as Buffer), reader.prefetch(first[4] as Buffer)], [true, false]);
  assert.equal(reader.allocatedBytes, 2 * reader2SlotBytes());
});

/** One frame slot of this repository's frames (frame-reader.ts sizes slots the same way). */
function reader2SlotBytes(): number {
  return new FrameReader(repo, 1).budgetBytes;
}

/** One frame slot of a snapshot disk's reader: sized for the disk's own frames. */
function diskSlotBytes(): number {
  return imageFrameSlotBytes(repo.config.blockSize, BLOCK);
}

test('a pack deleted while its handle is kept gives E_MISSING_OBJECT, not the bytes it held', async () => {
  const record = full.disks[0] as Snapshot['disks'][number];
  const first = new SnapshotDisk(repo, full.id, record);
  await first.read(0, BLOCK); // the pack's handle is now kept open by the backend
  const raw = await new DiskIndexReader(repo, record).rawEntry(0);
  const location = decodeLocatedEntry(raw, 'test');
  // Set aside by hand (as prune in another process would delete it), restored after.
  const path = join(root, packKey(location.pack.toString('hex')));
  const saved = await readFile(path);
  await unlink(path);
  try {
    const second = new SnapshotDisk(repo, full.id, record); // a fresh frame cache
    await assert.rejects(second.read(0, BLOCK), (error) => isCofferError(error, 'E_MISSING_OBJECT'));
    // The same through serve's zero-copy path (a request of whole blocks).
    const third = new SnapshotDisk(repo, full.id, record, { readAhead: true });
    await assert.rejects(third.readPinned(0, 4 * BLOCK), (error) => isCofferError(error, 'E_MISSING_OBJECT') && error.message.includes(`disk ${record.name}`));
  } finally {
    await writeFile(path, saved);
  }
});

test('multi-block reads under concurrency with a one-frame cache: the right bytes, each block in its place', async () => {
  // 64 reads in flight of 1-6 whole blocks (nbdcopy's 256 KiB requests on 64 KiB blocks
  // take the multi-block path: each block copied into its place), at seeded offsets, with a
  // cache of one frame slot that every read competes for. The incremental's frames hold
  // blocks from all over the disk, so a block put in the wrong place or read from another
  // frame's slot gives wrong bytes.
  const disk = new SnapshotDisk(repo, incremental.id, incremental.disks[0] as Snapshot['disks'][number], { readAhead: true, frameCacheBytes: diskSlotBytes() });
  try {
    assert.equal(disk.frameCache.budgetBytes, diskSlotBytes());
    const blocks = DISK / BLOCK;
    const random = seededBytes(77, 4 * 400);
    const reads = Array.from({ length: 400 }, (_, i) => {
      const count = 1 + ((random[4 * i] as number) % 6);
      const first = ((random[4 * i + 1] as number) * 256 + (random[4 * i + 2] as number)) % (blocks - count + 1);
      return { offset: first * BLOCK, length: count * BLOCK };
    });
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < reads.length) {
        const { offset, length } = reads[next++] as { offset: number; length: number };
        const data = Buffer.from(await disk.read(offset, length));
        assert.ok(data.equals(incrementalBytes.subarray(offset, offset + length)), `bytes differ at ${offset}+${length}`);
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    // The last read ends at the disk's end: a shorter last block (none here) or a whole one.
    const tail = await disk.read(DISK - 3 * BLOCK, 3 * BLOCK);
    assert.ok(Buffer.from(tail).equals(incrementalBytes.subarray(DISK - 3 * BLOCK)));
    assert.ok(disk.frameCache.allocatedBytes <= disk.frameCache.budgetBytes);
  } finally {
    await disk.close();
  }
});

test('a pinned chunk keeps its frame slot: a one-slot cache opens other frames elsewhere until it is released', async () => {
  const record = incremental.disks[0] as Snapshot['disks'][number];
  const index = new DiskIndexReader(repo, record);
  const byFrame = new Map<string, { raw: Buffer; block: number }>(); // the first block of each frame
  for (let block = 0; block < index.blockCount; block++) {
    const raw = await index.rawEntry(block);
    if (!isLocatedEntry(raw) || isZeroEntry(raw)) continue;
    const location = decodeLocatedEntry(raw, 'test');
    const key = `${location.pack.toString('hex')}@${location.frameOffset}`;
    if (!byFrame.has(key)) byFrame.set(key, { raw, block });
  }
  const [a, b, c] = [...byFrame.values()] as { raw: Buffer; block: number }[];
  assert.ok(a !== undefined && b !== undefined && c !== undefined);
  const expected = (block: number): Buffer => incrementalBytes.subarray(block * BLOCK, (block + 1) * BLOCK);
  const reader = new FrameReader(repo, reader2SlotBytes());
  const pinned = await reader.pin(a.raw, BLOCK);
  assert.ok(pinned.view.equals(expected(a.block)));
  const slot = pinned.view.buffer;
  // Frames b and c need the only slot, which a's pin holds: they are opened into memory of their own.
  for (const other of [b, c]) {
    const target = new Uint8Array(BLOCK);
    await reader.read(other.raw, target);
    assert.ok(Buffer.from(target).equals(expected(other.block)));
  }
  assert.ok(pinned.view.equals(expected(a.block)), 'the pinned view changed while pinned');
  assert.equal(reader.allocatedBytes, reader2SlotBytes());
  pinned.release();
  pinned.release(); // idempotent
  // Released, the slot goes to the next frame read: b is opened into it.
  const again = await reader.pin(b.raw, BLOCK);
  try {
    assert.equal(again.view.buffer, slot);
    assert.ok(again.view.equals(expected(b.block)));
  } finally {
    again.release();
  }
  assert.equal(reader.allocatedBytes, reader2SlotBytes());
});

test('pinned reads under concurrency with a one-frame cache: every view intact until released, zero runs without data', async () => {
  // 48 reads in flight of 1-6 whole blocks at seeded offsets, each holding its views until
  // eight later reads have come back (as a reply waits for the socket), then compared byte
  // for byte. A slot handed to another frame while a view still pointed into it would change
  // the bytes under the held reads.
  const disk = new SnapshotDisk(repo, incremental.id, incremental.disks[0] as Snapshot['disks'][number], { readAhead: true, frameCacheBytes: diskSlotBytes() });
  try {
    const blocks = DISK / BLOCK;
    const random = seededBytes(78, 4 * 300);
    const reads = Array.from({ length: 300 }, (_, i) => {
      const count = 1 + ((random[4 * i] as number) % 6);
      const first = ((random[4 * i + 1] as number) * 256 + (random[4 * i + 2] as number)) % (blocks - count + 1);
      return { offset: first * BLOCK, length: count * BLOCK };
    });
    reads.push({ offset: DISK - 6 * BLOCK, length: 6 * BLOCK }); // the tail: zero blocks between rewritten ones
    let zeroRuns = 0;
    const held: { offset: number; length: number; pinned: NonNullable<Awaited<ReturnType<SnapshotDisk['readPinned']>>> }[] = [];
    const checkAndRelease = (one: (typeof held)[number]): void => {
      const bytes = Buffer.alloc(one.length);
      let covered = 0;
      for (const run of one.pinned.runs) {
        assert.equal(run.offset, one.offset + covered, 'runs in order, without gaps');
        if (run.data !== undefined) Buffer.concat(run.data).copy(bytes, covered);
        else zeroRuns += 1;
        assert.equal(run.data?.reduce((n, view) => n + view.length, 0) ?? run.length, run.length);
        covered += run.length;
      }
      assert.equal(covered, one.length);
      assert.ok(bytes.equals(incrementalBytes.subarray(one.offset, one.offset + one.length)), `bytes differ at ${one.offset}+${one.length}`);
      one.pinned.release();
    };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < reads.length) {
        const { offset, length } = reads[next++] as { offset: number; length: number };
        const pinned = await disk.readPinned(offset, length);
        assert.ok(pinned !== undefined);
        held.push({ offset, length, pinned });
        if (held.length > 8) checkAndRelease(held.shift() as (typeof held)[number]);
      }
    };
    await Promise.all(Array.from({ length: 48 }, worker));
    held.splice(0).forEach(checkAndRelease);
    assert.ok(zeroRuns > 0, 'the zero tail (every third block rewritten) came as runs of zeros');
    // Not whole blocks, or format 1: read() serves it.
    assert.equal(await disk.readPinned(1, BLOCK), undefined);
    assert.equal(await disk.readPinned(0, BLOCK / 2), undefined);
    assert.ok(disk.frameCache.allocatedBytes <= disk.frameCache.budgetBytes);
  } finally {
    await disk.close();
  }
});

test('served over NBD with a one-frame cache: many concurrent whole-block and partial reads get the right bytes', async () => {
  // Replies of up to 1 MiB straight from the frames (zero-copy), 16 in flight, more than a
  // unix socket's buffer holds: the frames stay pinned while replies wait in the socket's
  // queue, and every other frame meanwhile goes to memory of its own.
  const disk = new SnapshotDisk(repo, incremental.id, incremental.disks[0] as Snapshot['disks'][number], { readAhead: true, frameCacheBytes: diskSlotBytes() });
  const socket = join(await tempFolder('coffer-sdisk-nbd'), 's.sock');
  const server = await NbdServer.listen({ socket }, { exports: { disk: { device: disk } } });
  try {
    const client = await NbdBlockDevice.open(`nbd+unix:///disk?socket=${socket}`, { maxInFlight: 16 });
    try {
      const random = seededBytes(79, 3 * 200);
      const reads = Array.from({ length: 200 }, (_, i) => {
        const blocks = 1 + ((random[3 * i] as number) % 16);
        const partial = (random[3 * i] as number) % 5 === 0 ? 1000 : 0; // every fifth unaligned: read() serves it
        const first = ((random[3 * i + 1] as number) * 256 + (random[3 * i + 2] as number)) % (DISK / BLOCK - blocks + 1);
        return { offset: first * BLOCK + partial, length: blocks * BLOCK - partial };
      });
      reads.push({ offset: 0, length: DISK });
      await Promise.all(
        reads.map(async ({ offset, length }) => {
          const data = Buffer.from(await client.read(offset, length));
          assert.ok(data.equals(incrementalBytes.subarray(offset, offset + length)), `bytes differ in ${length} at ${offset}`);
        }),
      );
    } finally {
      await client.close();
    }
  } finally {
    await server.close();
    await disk.close();
  }
});
