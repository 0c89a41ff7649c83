/**
 * Black-box round trips through the `coffer` binary on real disks (GPT and DOS labels, ext4
 * made by mke2fs): init, backup, incremental, list, restore by every kind of reference, and
 * independent readers (qemu-img compare, e2fsck, sha256 of the source's blocks) as oracles.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildExt4Disk, buildSparseDiskBeyond4G, deriveDisk, requireTools, seededBytes, type Ext4DiskOptions } from '../testing/index.js';
import {
  assertExit,
  assertSameBytes,
  chunkIds,
  chunkPath,
  coffer,
  cofferJson,
  makeWorkDir,
  removeDir,
  runTool,
  type BackupJson,
  type SnapshotJson,
  type StatsJson,
  type VerifyJson,
} from './cli-harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

let work: string;
before(async () => {
  await requireTools('sfdisk', 'mke2fs', 'e2fsck', 'cp', 'qemu-img');
  work = await makeWorkDir('roundtrip');
});
after(() => removeDir(work));

/** The GPT disk of the first case; the dedup test clones it. */
const GPT_DISK: Ext4DiskOptions = { name: 'cli-rt-gpt', size: 64 * MiB, label: 'gpt', partitionSizeMiB: 48, files: 'small' };

const roundTrips: {
  title: string;
  disk: Ext4DiskOptions;
  init: string[];
  env: Record<string, string>;
  encrypted: boolean;
  blockSize: number;
}[] = [
  {
    title: 'encrypted repository, GPT disk, default block size',
    disk: GPT_DISK,
    init: [],
    env: { COFFER_PASSWORD: 'correct horse battery staple' },
    encrypted: true,
    blockSize: 256 * KiB,
  },
  {
    // No passphrase anywhere in the environment: an unencrypted repository needs none.
    title: 'unencrypted repository, DOS disk, 64K blocks',
    disk: { name: 'cli-rt-dos', size: 48 * MiB, label: 'dos', partitionStartMiB: 2, partitionSizeMiB: 40, files: 'small', seed: 2 },
    init: ['--insecure-no-encryption', '--block-size', '64K'],
    env: {},
    encrypted: false,
    blockSize: 64 * KiB,
  },
];

for (const c of roundTrips) {
  test(`round trip: ${c.title}`, async () => {
    const disk = await buildExt4Disk(c.disk);
    const partition = disk.partitions[0]!.start;
    // Two edits: 5000 bytes across a block boundary inside the filesystem, 17 bytes elsewhere.
    const v2 = await deriveDisk(disk.path, `${c.disk.name}-v2`, [
      { offset: partition + 20 * MiB + c.blockSize - 2000, bytes: 5000 },
      { offset: 3 * MiB + 7, bytes: Buffer.from('coffer round trip') },
    ]);
    const dir = await makeWorkDir('rt');
    try {
      const repo = join(dir, 'repo');
      // The block fingerprint cache on: the incremental below hashes only the blocks whose fingerprint moved.
      const cache = join(dir, 'cache');
      const env = { env: { ...c.env, XDG_CACHE_HOME: cache } };
      // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
      const init = await cofferJson<{ encryption: string; blockSize: number }>(['init', '--format', '1', '-r', repo, ...c.init], env);
      assert.equal(init.encryption, c.encrypted ? 'aes-256-gcm' : 'none');
      assert.equal(init.blockSize, c.blockSize);

      const first = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web', '--tag', 'first', '--tag', 'nightly', '--time', '2024-03-01T10:00:00+01:00', disk.path], env);
      assert.equal(first.vm, 'web');
      assert.equal(first.parent, null);
      assert.equal(first.bytesLogical, disk.size);
      assert.ok(first.bytesNew > 2 * MiB, `first backup stored only ${first.bytesNew} bytes of new data`);
      assert.ok(first.bytesRead < disk.size / 2, `read ${first.bytesRead} of a mostly sparse ${disk.size}-byte disk: holes were read`);
      assert.ok(first.bytesStored > 0 && first.bytesStored < first.bytesNew, 'the small tree compresses');

      const second = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web', '--time', '2024-03-02T09:00:00Z', v2], env);
      assert.equal(second.parent, first.id);
      assert.ok(second.bytesNew > 0, 'the changed blocks were not stored');
      assert.ok(second.bytesNew <= 3 * c.blockSize, `incremental stored ${second.bytesNew} bytes for 3 changed blocks at most`);
      const [repositoryCaches] = await readdir(join(cache, 'coffer', 'block-fingerprints'));
      const caches = (await readdir(join(cache, 'coffer', 'block-fingerprints', repositoryCaches!))).sort();
      assert.equal(caches.length, 2, `the VM's one disk: its cache and the older one: ${caches.join(', ')}`);
      const described = async (name: string) => (await readFile(join(cache, 'coffer', 'block-fingerprints', repositoryCaches!, name))).subarray(32, 64).toString('hex');
      assert.equal(await described(caches[0]!), second.id, 'the cache describes the latest snapshot');
      assert.equal(caches[1], `${caches[0]}.older`);
      assert.equal(await described(caches[1]!), first.id, 'the older one its parent');

      const listed = await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], env);
      const stats = (b: BackupJson) => ({ bytesLogical: b.bytesLogical, bytesRead: b.bytesRead, bytesNew: b.bytesNew, bytesStored: b.bytesStored, durationMs: b.durationMs });
      const diskRecord = (source: string) => [{ name: 'disk0', size: disk.size, sourceFormat: 'raw', source, blockSize: c.blockSize }];
      assert.deepEqual(listed, [
        { id: first.id, shortId: first.id.slice(0, 8), vm: 'web', time: '2024-03-01T09:00:00.000Z', hostname: hostname(), tags: ['first', 'nightly'], parent: null, disks: diskRecord(disk.path), stats: stats(first), protected: false, protection: null },
        { id: second.id, shortId: second.id.slice(0, 8), vm: 'web', time: '2024-03-02T09:00:00.000Z', hostname: hostname(), tags: [], parent: first.id, disks: diskRecord(v2), stats: stats(second), protected: false, protection: null },
      ]);
      assert.match(first.id, /^[0-9a-f]{64}$/);

      // Every chunk file is a version-1 envelope of kind 1, encrypted exactly when asked.
      const ids = await chunkIds(repo);
      assert.ok(ids.length > 0);
      let addressedBySha256 = 0;
      for (const id of ids) {
        const blob = await readFile(chunkPath(repo, id));
        assert.equal(blob.subarray(0, 4).toString('latin1'), 'CFE1', `chunk ${id} magic`);
        assert.equal(blob[4], 1, `chunk ${id} kind`);
        assert.equal(blob[6], c.encrypted ? 1 : 0, `chunk ${id} encryption flag`);
        // An unencrypted, uncompressed chunk is its plaintext, named by its SHA-256.
        if (!c.encrypted && blob[5] === 0) {
          assert.equal(createHash('sha256').update(blob.subarray(12)).digest('hex'), id);
          addressedBySha256 += 1;
        }
      }
      if (!c.encrypted) assert.ok(addressedBySha256 > 0, 'no incompressible chunk to check the content address of');

      // Restore by short id (a prefix), by full id, and NAME:latest to standard output.
      const out1 = join(dir, 'first.raw');
      const out2 = join(dir, 'second.raw');
      assertExit(await coffer(['restore', '-r', repo, first.id.slice(0, 8), '--to', out1], env), 0);
      assertExit(await coffer(['restore', '-r', repo, second.id, '--to', out2], env), 0);
      await assertSameBytes(out1, disk.path, 'first snapshot');
      await assertSameBytes(out2, v2, 'second snapshot');
      const piped = await coffer(['restore', '-r', repo, 'web:latest', '--to', '-'], env);
      assertExit(piped, 0);
      await assertSameBytes(piped.stdout, v2, 'web:latest on stdout');

      // The restored file is sparse: its zero blocks were never written.
      const restored = await stat(out1);
      assert.ok(restored.blocks * 512 < disk.size / 4, `restored file allocates ${restored.blocks * 512} of ${disk.size} bytes`);

      // Independent readers: qemu-img compares the images, e2fsck checks the restored filesystem.
      const compare = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', out2, v2]);
      assert.equal(compare.code, 0, `qemu-img compare: ${compare.stdout}${compare.stderr}`);
      const fsck = await runTool('e2fsck', ['-fn', `${out1}?offset=${partition}`]);
      assert.equal(fsck.code, 0, `e2fsck on the restored disk:\n${fsck.stdout}${fsck.stderr}`);

      const verify = await cofferJson<VerifyJson>(['verify', '-r', repo, '--read-data'], env);
      assert.equal(verify.ok, true);
      assert.equal(verify.snapshots, 2);
      assert.equal(verify.chunksReferenced, ids.length);
      assert.equal(verify.chunksRead, ids.length);
    } finally {
      await removeDir(dir);
    }
  });
}

test('round trip of a 5 GiB sparse disk whose partition lies beyond 4 GiB', async () => {
  const disk = await buildSparseDiskBeyond4G('cli-rt-beyond4g');
  const partition = disk.partitions[0]!.start;
  assert.ok(partition > 4 * GiB);
  const dir = await makeWorkDir('4g');
  try {
    const repo = join(dir, 'repo');
    const env = { env: { COFFER_PASSWORD: 'pw' } };
    await cofferJson(['init', '--format', '1', '-r', repo, '--block-size', '64K'], env);
    const backup = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'big', disk.path], env);
    assert.equal(backup.bytesLogical, 5 * GiB);
    const allocated = (await stat(disk.path)).blocks * 512;
    assert.ok(backup.bytesRead <= allocated + 64 * 64 * KiB, `read ${backup.bytesRead} bytes of a disk with ${allocated} allocated: holes were read`);
    assert.ok(backup.bytesNew > 2 * MiB);

    const out = join(dir, 'big.raw');
    assertExit(await coffer(['restore', '-r', repo, 'latest', '--to', out], env), 0);
    const restored = await stat(out);
    assert.equal(restored.size, 5 * GiB);
    assert.ok(restored.blocks * 512 < 256 * MiB, `restored file allocates ${restored.blocks * 512} bytes`);
    const compare = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', out, disk.path]);
    assert.equal(compare.code, 0, `qemu-img compare: ${compare.stdout}${compare.stderr}`);
    const fsck = await runTool('e2fsck', ['-fn', `${out}?offset=${partition}`]);
    assert.equal(fsck.code, 0, `e2fsck on the restored partition beyond 4 GiB:\n${fsck.stdout}${fsck.stderr}`);
    const handle = await open(out, 'r');
    try {
      const { buffer } = await handle.read(Buffer.alloc(64 * KiB), 0, 64 * KiB, MiB);
      assert.ok(buffer.equals(seededBytes(4242, 64 * KiB)), 'the data at 1 MiB');
    } finally {
      await handle.close();
    }
  } finally {
    await removeDir(dir);
  }
});

/** What a dedup-perfect store of these images holds: non-zero blocks and their distinct contents. */
async function blockCensus(paths: string[], blockSize: number): Promise<{ data: number; unique: Map<string, number>; perImage: Set<string>[] }> {
  const unique = new Map<string, number>();
  const perImage: Set<string>[] = [];
  let data = 0;
  for (const path of paths) {
    const bytes = await readFile(path);
    const mine = new Set<string>();
    for (let at = 0; at < bytes.length; at += blockSize) {
      const block = bytes.subarray(at, Math.min(at + blockSize, bytes.length));
      if (block.every((b) => b === 0)) continue;
      const hash = createHash('sha256').update(block).digest('hex');
      data += block.length;
      unique.set(hash, block.length);
      mine.add(hash);
    }
    perImage.push(mine);
  }
  return { data, unique, perImage };
}

test('two VMs cloned from one base share their chunks: the clone stores only what it added', async () => {
  const blockSize = 64 * KiB;
  const base = await buildExt4Disk(GPT_DISK);
  const added = 3 * MiB;
  const clone = await deriveDisk(base.path, 'cli-rt-clone', [{ offset: 30 * MiB + 1000, bytes: added, seed: 77 }]);
  const dir = await makeWorkDir('dedup');
  try {
    const repo = join(dir, 'repo');
    const env = { env: { COFFER_PASSWORD: 'pw' } };
    await cofferJson(['init', '--format', '1', '-r', repo, '--block-size', '64K'], env);
    const a = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'A', base.path], env);
    const b = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'B', clone], env);
    assert.equal(b.parent, null, 'another VM is not a parent');

    // The oracle: SHA-256 of every 64 KiB block of both images.
    const census = await blockCensus([base.path, clone], blockSize);
    const [inBase, inClone] = census.perImage as [Set<string>, Set<string>];
    const onlyInClone = [...inClone].filter((hash) => !inBase.has(hash));
    assert.equal(a.bytesNew, inBase.size * blockSize);
    assert.equal(b.bytesNew, onlyInClone.length * blockSize);
    assert.ok(b.bytesNew >= added && b.bytesNew <= added + 2 * blockSize, `clone stored ${b.bytesNew} bytes for ${added} added`);

    const stats = await cofferJson<StatsJson>(['stats', '-r', repo], env);
    assert.equal(stats.snapshots, 2);
    assert.equal(stats.vms, 2);
    assert.equal(stats.bytesLogical, base.size * 2);
    assert.equal(stats.bytesData, census.data);
    assert.equal(stats.bytesUnique, census.unique.size * blockSize);
    assert.equal(stats.chunks, census.unique.size);
    assert.equal(stats.chunks, (await chunkIds(repo)).length);
    assert.ok(Math.abs(stats.dedupRatio - census.data / stats.bytesUnique) < 1e-9);
    assert.ok(stats.dedupRatio > 1.5, `dedup ratio ${stats.dedupRatio}`);
    assert.ok(stats.compressionRatio > 1, 'the text files compress');
    assert.ok(stats.totalRatio > stats.dedupRatio);

    const out = join(dir, 'b.raw');
    assertExit(await coffer(['restore', '-r', repo, 'B:latest', '--to', out], env), 0);
    await assertSameBytes(out, clone, 'the clone');
  } finally {
    await removeDir(dir);
  }
});
