import assert from 'node:assert/strict';
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { RawImage } from '../disk/index.js';
import { DiskIndexReader, FaultyBackend, initRepository, listSnapshots, LocalBackend, verifyRepository, type Backend, type FormatVersion, type Repository } from '../repo/index.js';
import { restoreSnapshot, SnapshotDisk } from '../restore/index.js';
import { openImageSource } from '../source/index.js';
import { backupFile, seededBytes, tempFolders, withRepo } from '../testing/index.js';
import { backupDisk } from './backup-disk.js';
import { backupVm } from './backup-vm.js';
import { KnownChunks } from './known-chunks.js';
import { PackedChunks } from './packed-chunks.js';

const tempFolder = tempFolders();

const KiB = 1024;
const MiB = 1024 * KiB;
const kdf = { N: 1024, r: 8, p: 1 };

/** A sparse raw image with data written at the given offsets. */
async function sparseImage(size: number, writes: { offset: number; data: Buffer }[]): Promise<string> {
  const path = join(await tempFolder('coffer-img'), 'disk.raw');
  await writeFile(path, '');
  await truncate(path, size);
  const handle = await open(path, 'r+');
  for (const { offset, data } of writes) await handle.write(data, 0, data.length, offset);
  await handle.close();
  return path;
}

async function newRepo(options: { blockSize?: number; encrypted?: boolean; format?: FormatVersion } = {}): Promise<{ backend: LocalBackend; root: string }> {
  const root = await tempFolder('coffer-repo');
  const backend = new LocalBackend(root);
  await initRepository(backend, { passphrase: options.encrypted === false ? null : 'pw', kdf, blockSize: options.blockSize ?? 64 * KiB, ...(options.format === undefined ? {} : { format: options.format }) });
  return { backend, root };
}

/**
 * What backupVm gives backupDisk in a format 2 repository: a pack writer for the new chunks
 * (`packed`), whose last pack and index segment `finish` stores; nothing in format 1.
 */
function packedFor(repo: Repository): { packed: PackedChunks | undefined; finish: () => Promise<void> } {
  const packed = repo.config.version === 2 ? new PackedChunks(repo) : undefined;
  return {
    packed,
    finish: async () => {
      await packed?.writer.finish();
    },
  };
}

async function objectCount(backend: Backend, prefix = ''): Promise<number> {
  let count = 0;
  for await (const _ of backend.list(prefix)) count += 1;
  return count;
}



test('holes are never read, and zero blocks are stored as nothing', async () => {
  const image = await sparseImage(64 * MiB, [
    { offset: 1 * MiB, data: seededBytes(1, 200 * KiB) },
    { offset: 40 * MiB, data: Buffer.alloc(128 * KiB) }, // written zeros: read, but not stored
  ]);
  const { backend } = await newRepo();
  await withRepo(backend, async (repo) => {
    const snapshot = await backupFile(repo, 'vm', image);
    // 200 KiB at 1 MiB touches 4 blocks of 64 KiB; the written zeros 2 more.
    assert.equal(snapshot.stats.bytesRead, 6 * 64 * KiB);
    assert.equal(snapshot.stats.bytesNew, 4 * 64 * KiB);
    assert.equal(snapshot.stats.bytesLogical, 64 * MiB);
  });
});

test('an incremental of an unchanged disk adds only its manifest, within 64 KiB + 0.01% of the disk', async () => {
  const image = await sparseImage(256 * MiB, [{ offset: 0, data: seededBytes(2, 8 * MiB) }, { offset: 200 * MiB, data: seededBytes(3, 3 * MiB) }]);
  const { backend, root } = await newRepo({ blockSize: 4 * KiB }); // many blocks: 65536 entries, 16 pages
  await withRepo(backend, async (repo) => {
    await backupFile(repo, 'vm', image);
    const before = await objectCount(backend);
    const digestsBefore = await objectCount(backend, 'digests/');
    const second = await backupFile(repo, 'vm', image);
    // The manifest, and the signed digest record that covers it (repository-format.md §18).
    assert.equal(await objectCount(backend), before + 2);
    assert.equal(await objectCount(backend, 'digests/'), digestsBefore + 1);
    assert.equal(second.stats.bytesNew, 0);
    const manifestSize = (await readFile(join(root, 'snapshots', second.id))).length;
    assert.ok(manifestSize <= 64 * KiB + 0.0001 * 256 * MiB, `manifest of ${manifestSize} bytes`);
  });
});

test('the parent is the latest snapshot of the same VM, and changed blocks are all that is new', async () => {
  const base = seededBytes(4, 4 * MiB);
  const image = await sparseImage(16 * MiB, [{ offset: 0, data: base }]);
  const { backend } = await newRepo();
  await withRepo(backend, async (repo) => {
    const first = await backupFile(repo, 'vm', image);
    const handle = await open(image, 'r+');
    await handle.write(seededBytes(5, 4 * KiB), 0, 4 * KiB, 3 * MiB + 100);
    await handle.close();
    const second = await backupFile(repo, 'vm', image);
    assert.equal(second.parent, first.id);
    assert.equal(second.stats.bytesNew, 64 * KiB);
    const other = await backupFile(repo, 'other-vm', image);
    assert.equal(other.parent, null);
    assert.equal(other.stats.bytesNew, 0); // same data, another VM: all deduplicated
  });
});

// The storage fills at the 40th chunk object (format 1) or at the first pack (format 2: 8 MiB
// of random blocks fill one pack). A format 1 rerun reuses the 39 chunks stored; a format 2
// rerun stores again what was in packs that no index segment names (prune deletes those).
for (const { format, keyPrefix, nth } of [{ format: 2, keyPrefix: 'packs/', nth: 1 }, { format: 1, keyPrefix: 'chunks/', nth: 40 }] as const) {
  test(`format ${format}: a full disk during backup leaves no snapshot and a repository that verifies; the rerun ${format === 1 ? 'reuses what was stored' : 'completes and restores'}`, async () => {
    const image = await sparseImage(8 * MiB, [{ offset: 0, data: seededBytes(6, 8 * MiB) }]);
    const { backend } = await newRepo({ format });
    const faulty = new FaultyBackend(backend, [{ method: 'put', keyPrefix, nth, code: 'E_NO_SPACE' }]);
    await withRepo(faulty, async (repo) => {
      await assert.rejects(backupFile(repo, 'vm', image), (e) => isCofferError(e, 'E_NO_SPACE'));
      assert.deepEqual(faulty.unexercised(), []);
      assert.equal((await listSnapshots(repo)).length, 0);
      const report = await verifyRepository(repo, { readData: true, now: () => new Date() });
      assert.deepEqual(report.damaged, []);
    });
    await withRepo(backend, async (repo) => {
      const snapshot = await backupFile(repo, 'vm', image);
      if (format === 1) assert.ok(snapshot.stats.bytesNew <= 8 * MiB - 39 * 64 * KiB, `rerun stored ${snapshot.stats.bytesNew} bytes again`);
      const disk = new SnapshotDisk(repo, snapshot.id, snapshot.disks[0]!);
      assert.deepEqual(Buffer.from(await disk.read(0, 8 * MiB)), await readFile(image));
      assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
    });
  });
}

test('a source that shrinks while read fails the backup with E_SOURCE_SHRUNK and records nothing', async () => {
  const image = await sparseImage(8 * MiB, [{ offset: 0, data: seededBytes(7, 8 * MiB) }]);
  const { backend } = await newRepo();
  await withRepo(backend, async (repo) => {
    const source = await openImageSource('vm', [image]);
    await truncate(image, 2 * MiB); // after open: the device still believes in 8 MiB
    try {
      await assert.rejects(backupVm(repo, source), (e) => isCofferError(e, 'E_SOURCE_SHRUNK'));
    } finally {
      await source.close();
    }
    assert.equal((await listSnapshots(repo)).length, 0);
  });
});

test('an aborted backup records nothing', async () => {
  const image = await sparseImage(8 * MiB, [{ offset: 0, data: seededBytes(8, 8 * MiB) }]);
  const { backend } = await newRepo();
  await withRepo(backend, async (repo) => {
    const source = await openImageSource('vm', [image]);
    const controller = new AbortController();
    const run = backupVm(repo, source, { signal: controller.signal, onProgress: (p) => p.bytesDone > MiB && controller.abort() });
    await assert.rejects(run, (e) => isCofferError(e, 'E_INTERRUPTED'));
    await source.close();
    assert.equal((await listSnapshots(repo)).length, 0);
  });
});

test('a snapshot disk reads any range like the source, across block boundaries', async () => {
  const size = 3 * MiB + 12_345; // a short last block
  const data = seededBytes(9, size);
  const image = await sparseImage(size, [{ offset: 0, data }]);
  const { backend } = await newRepo({ encrypted: false });
  await withRepo(backend, async (repo) => {
    const snapshot = await backupFile(repo, 'vm', image);
    const disk = new SnapshotDisk(repo, snapshot.id, snapshot.disks[0]!);
    for (const [offset, length] of [[0, 1], [65_535, 2], [100_000, 300_000], [size - 12_345, 12_345], [size - 1, 1], [0, size]] as const) {
      assert.deepEqual(Buffer.from(await disk.read(offset, length)), data.subarray(offset, offset + length), `${offset}+${length}`);
    }
    await assert.rejects(disk.read(size, 1), RangeError);
  });
});

test('restore to a stream writes blocks in order', async () => {
  const data = seededBytes(10, 2 * MiB);
  const image = await sparseImage(6 * MiB, [{ offset: MiB, data }]);
  const { backend } = await newRepo();
  await withRepo(backend, async (repo) => {
    const snapshot = await backupFile(repo, 'vm', image);
    const { PassThrough } = await import('node:stream');
    const stream = new PassThrough();
    const parts: Buffer[] = [];
    stream.on('data', (part: Buffer) => parts.push(part));
    await restoreSnapshot(repo, snapshot, { to: '-', stdout: stream });
    assert.deepEqual(Buffer.concat(parts), await readFile(image));
  });
});

test('restore into an existing directory writes <disk>.raw there, even for one disk', async () => {
  const data = seededBytes(11, MiB);
  const image = await sparseImage(4 * MiB, [{ offset: 2 * MiB, data }]);
  const { backend } = await newRepo();
  await withRepo(backend, async (repo) => {
    const snapshot = await backupFile(repo, 'vm', image);
    const directory = await tempFolder('coffer-restore');
    const [result] = await restoreSnapshot(repo, snapshot, { to: directory });
    assert.equal(result?.path, join(directory, 'disk0.raw'));
    assert.deepEqual(await readFile(join(directory, 'disk0.raw')), await readFile(image));
  });
});

test('with change tracking trusted, ranges marked unchanged are taken from the parent without being read', async () => {
  const image = await sparseImage(4 * MiB, [{ offset: 0, data: seededBytes(12, 4 * MiB) }]);
  const { backend } = await newRepo();
  await withRepo(backend, async (repo) => {
    const parent = await backupFile(repo, 'vm', image);
    const raw = await RawImage.open(image);
    // Change tracking (as a dirty bitmap would report it): only the second MiB changed.
    const device = {
      size: raw.size,
      read: raw.read.bind(raw),
      close: () => raw.close(),
      async *extents() {
        yield { offset: 0, length: MiB, kind: 'data' as const, changed: false };
        yield { offset: MiB, length: MiB, kind: 'data' as const, changed: true };
        yield { offset: 2 * MiB, length: 2 * MiB, kind: 'data' as const, changed: false };
      },
    };
    const { packed, finish } = packedFor(repo);
    const { progress } = await backupDisk(repo, device, {
      name: 'disk0',
      sourceFormat: 'raw',
      source: image,
      parent: new DiskIndexReader(repo, parent.disks[0]!),
      known: new KnownChunks(),
      packed,
      damaged: new Set(),
      trustChangeTracking: true,
      signal: undefined,
      onProgress: undefined,
    });
    await finish();
    await device.close();
    assert.equal(progress.bytesRead, MiB);
  });
});

test('data is read in runs of up to 4 MiB (one read and one hashing task each), never less than a block, and round-trips', async () => {
  // 9 MiB of data after a hole, then a hole, then 1.5 MiB: every block size cuts these into
  // 4 MiB reads (a block larger than 4 MiB is read alone), and a read never crosses a hole.
  const image = await sparseImage(32 * MiB, [
    { offset: 4 * MiB, data: seededBytes(20, 9 * MiB) },
    { offset: 24 * MiB, data: seededBytes(21, 1.5 * MiB) },
  ]);
  const expected: Record<number, number[]> = {
    [64 * KiB]: [4, 4, 1.5, 1].map((m) => m * MiB), // 4-8, 8-12, 24-25.5, 12-13
    [MiB]: [4, 4, 2, 1].map((m) => m * MiB), // 4-8, 8-12, 24-26, 12-13
    [4 * MiB]: [4, 4, 4, 4].map((m) => m * MiB), // 4-8, 8-12, 12-16 (9 MiB of data reach 13), 24-28
  };
  for (const [blockSize, reads] of Object.entries(expected)) {
    const { backend } = await newRepo({ blockSize: Number(blockSize) });
    await withRepo(backend, async (repo) => {
      const raw = await RawImage.open(image);
      const lengths: number[] = [];
      const device = {
        size: raw.size,
        read: (offset: number, length: number, into?: Uint8Array) => {
          lengths.push(length);
          return raw.read(offset, length, into);
        },
        close: () => raw.close(),
        extents: raw.extents.bind(raw),
      };
      const { packed, finish } = packedFor(repo);
      const { record } = await backupDisk(repo, device, { name: 'disk0', sourceFormat: 'raw', source: image, parent: undefined, known: new KnownChunks(), packed, damaged: new Set(), trustChangeTracking: false, signal: undefined, onProgress: undefined });
      await finish();
      await device.close();
      assert.deepEqual(lengths.sort((a, b) => b - a), reads, `reads with ${Number(blockSize) / KiB} KiB blocks`);
      const reader = new DiskIndexReader(repo, record);
      assert.equal(reader.blockCount, (32 * MiB) / Number(blockSize));
    });
  }
});
