/**
 * Restore from S3 of a snapshot a repacking prune moved (restore-frames.ts, moved-chunks.ts,
 * docs/repository-format.md §19.7), against a real Ceph RADOS Gateway: the moved blocks come
 * back byte for byte from the packs the prune wrote, by spans of frames several to a GET (the
 * block path made one GET per frame, after one failed GET per frame of the removed packs), no
 * byte read twice; the removed packs are asked only by the GETs in flight when the first came
 * back 404, and not at all by a restore once the repository knows.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../backup/index.js';
import { deleteSnapshot, initRepository, listSnapshots, openRepository, parseS3Location, pruneRepository, S3Backend, type Backend, type Repository } from '../repo/index.js';
import { openImageSource } from '../source/index.js';
import { seededBytes, startCephS3, tempFolders, type CephS3 } from '../testing/index.js';
import { restoreSnapshot } from './index.js';
import { remoteReads } from './restore-frames.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;
const BLOCKS_PER_FRAME = 8;
/** 16 MiB of incompressible data (32 frames); every third frame rewritten by the second backup. */
const BLOCKS = 256;
const first = seededBytes(71, BLOCKS * BLOCK);
const second = Buffer.from(first);
for (let frame = 0; frame < BLOCKS / BLOCKS_PER_FRAME; frame += 3) seededBytes(500 + frame, BLOCKS_PER_FRAME * BLOCK).copy(second, frame * BLOCKS_PER_FRAME * BLOCK);

const tempFolder = tempFolders();
let s3: CephS3 | undefined;
const backends: S3Backend[] = [];

before(async () => {
  s3 = await startCephS3();
});
after(async () => {
  for (const backend of backends) backend.destroy();
  await s3?.stop();
});

interface RangedRead {
  key: string;
  offset: number;
  length: number;
  failed: boolean;
}

/** `backend` with every ranged read recorded (every other property passed through, preferredConcurrency included). */
function recording(backend: S3Backend): { backend: Backend; reads: RangedRead[] } {
  const reads: RangedRead[] = [];
  const counted = new Proxy(backend, {
    get(target, property) {
      if (property === 'getRange') {
        return async (key: string, offset: number, length: number) => {
          const read = { key, offset, length, failed: false };
          reads.push(read);
          try {
            return await target.getRange(key, offset, length);
          } catch (error) {
            read.failed = true;
            throw error;
          }
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { backend: counted, reads };
}

async function packs(backend: Backend): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const entry of backend.list('packs/')) out.set(entry.key, entry.size);
  return out;
}

function assertEachByteOnce(reads: readonly RangedRead[]): void {
  const byKey = new Map<string, RangedRead[]>();
  for (const read of reads) byKey.set(read.key, [...(byKey.get(read.key) ?? []), read]);
  for (const [key, list] of byKey) {
    const sorted = [...list].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      const previous = sorted[i - 1] as RangedRead;
      assert.ok((sorted[i] as RangedRead).offset >= previous.offset + previous.length, `${key} read twice at ${(sorted[i] as RangedRead).offset}`);
    }
  }
}

test('a repacked snapshot restores from S3 by spans of the new packs: byte for byte, each byte once, the removed packs only by the GETs in flight at the first 404', async (t) => {
  const cluster = s3 as CephS3;
  const bucket = await cluster.createBucket('rf-moved');
  const backend = new S3Backend(parseS3Location(`s3:${cluster.endpoint}/${bucket}/repo`), { credentials: cluster.credentials });
  backends.push(backend);
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  const writer = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  const image = join(await tempFolder('coffer-rfm3-img'), 'disk.raw');
  const removed = new Set<string>();
  const written = new Map<string, number>();
  try {
    const backup = async (bytes: Buffer) => {
      await writeFile(image, bytes);
      const source = await openImageSource('vm', [image]);
      return backupVm(writer, source).finally(() => source.close());
    };
    const old = await backup(first);
    await backup(second);
    await deleteSnapshot(writer, old.id);
    const before = await packs(backend);
    const report = await pruneRepository(writer);
    assert.ok((report.packs?.packsRepacked ?? 0) >= 2, JSON.stringify(report.packs));
    const now = await packs(backend);
    for (const key of before.keys()) if (!now.has(key)) removed.add(key);
    for (const [key, size] of now) if (!before.has(key)) written.set(key, size);
  } finally {
    await writer.close();
  }

  const { backend: counted, reads } = recording(backend);
  const repo: Repository = await openRepository(counted, { passphrase: 'pw', threads: 2 });
  try {
    const [snapshot] = await listSnapshots(repo);
    assert.ok(snapshot !== undefined);
    const to = join(await tempFolder('coffer-rfm3-out'), 'restored.raw');
    await restoreSnapshot(repo, snapshot, { to });
    assert.ok((await readFile(to)).equals(second), 'byte for byte');
    const ofRemoved = reads.filter((r) => removed.has(r.key));
    const ofWritten = reads.filter((r) => written.has(r.key));
    t.diagnostic(`first restore: ${reads.length} ranged GETs, ${ofRemoved.length} of removed packs, ${ofWritten.length} of the ${written.size} packs the prune wrote`);
    assert.ok(ofRemoved.every((r) => r.failed) && reads.every((r) => !r.failed || removed.has(r.key)), 'only the removed packs fail');
    const inFlight = remoteReads(backend.preferredConcurrency).inFlight;
    assert.ok(ofRemoved.length >= 1 && ofRemoved.length <= inFlight, `${ofRemoved.length} GETs of removed packs (at most the ${inFlight} in flight)`);
    assertEachByteOnce(ofWritten);
    // 22 frames moved: the block path made a GET per frame. By spans: about 1.5 MiB or more a GET.
    const most = [...written.values()].reduce((sum, size) => sum + Math.ceil(size / (1.5 * MiB)), 0);
    assert.ok(ofWritten.length <= most, `${ofWritten.length} GETs of the packs the prune wrote (at most ${most})`);

    const earlier = reads.length;
    await restoreSnapshot(repo, snapshot, { to, overwrite: true });
    assert.ok((await readFile(to)).equals(second), 'byte for byte');
    const again = reads.slice(earlier);
    t.diagnostic(`second restore: ${again.length} ranged GETs`);
    assert.equal(again.filter((r) => removed.has(r.key) || r.failed).length, 0, 'no GET of a removed pack, none failed');
    assertEachByteOnce(again.filter((r) => written.has(r.key)));
  } finally {
    await repo.close();
  }
});
