/**
 * A damaged format 2 repository: `verify --cover-stored` vouches for every pack and segment
 * but the damaged pack, `repair --salvage` saves the good frames of the damaged pack into a
 * new pack and zeroes the rest, and after the damaged snapshot is forgotten prune deletes the
 * damaged pack (the salvaged copy no longer reads it).
 */
import assert from 'node:assert/strict';
import { open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupVm } from '../backup/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { openImageSource } from '../source/index.js';
import { makeTempDir, seededBytes } from '../testing/index.js';
import { LocalBackend } from './backend/local-backend.js';
import { coverStoredObjects } from './digests/cover-stored.js';
import { verifyStored } from './digests/verify-stored.js';
import { pruneRepository } from './prune.js';
import { initRepository, openRepository } from './repository.js';
import { salvageSnapshot } from './salvage.js';
import { deleteSnapshot } from './snapshots.js';
import { verifyRepository } from './verify.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const dirs: { remove(): Promise<void> }[] = [];
after(async () => {
  for (const dir of dirs) await dir.remove();
});

async function packFiles(root: string): Promise<string[]> {
  return (await readdir(join(root, 'packs'), { recursive: true })).filter((name) => /[0-9a-f]{64}$/.test(name)).map((name) => join(root, 'packs', name));
}

test('format 2: cover-stored skips only the damaged pack; salvage saves its good frames into a new pack; prune then deletes the damaged pack', async () => {
  const work = await makeTempDir('coffer-salvage-packs');
  dirs.push(work);
  const root = join(work.path, 'repo');
  const backend = new LocalBackend(root);
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB, format: 2 });
  const data = seededBytes(41, 2 * MiB);
  const disk = join(work.path, 'disk.raw');
  await writeFile(disk, data);
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  try {
    const source = await openImageSource('vm', [disk]);
    const snapshot = await backupVm(repo, source).finally(() => source.close());
    const [pack] = await packFiles(root);
    const handle = await open(pack as string, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 100); // inside the first frame
    byte[0] = (byte[0] as number) ^ 0xff;
    await handle.write(byte, 0, 1, 100);
    await handle.close();

    // Objects written before digests existed: cover them, all but the damaged pack.
    for (const name of await readdir(join(root, 'digests'))) await rm(join(root, 'digests', name));
    const cover = await coverStoredObjects(repo);
    assert.deepEqual(cover.skipped.map((s) => s.key), [`packs/${(pack as string).split('/').at(-1)?.slice(0, 2)}/${(pack as string).split('/').at(-1)}`]);
    assert.match(cover.skipped[0]?.reason ?? '', /do not hash to its id|does not authenticate/);
    assert.ok(cover.objectsCovered >= 4, `${cover.objectsCovered} covered`); // config, key, segment, index page, manifest

    const verify = await verifyRepository(repo, { readData: true, now: () => new Date() });
    assert.equal(verify.damaged.length, 8);
    const bad = new Set(verify.damaged.map((d) => d.id));
    const salvaged = await salvageSnapshot(repo, snapshot, (hex) => bad.has(hex));
    const zeroed = salvaged.zeroed[0]?.ranges ?? [];
    assert.equal(zeroed.reduce((sum, r) => sum + r.end - r.start, 0), 512 * KiB);
    assert.equal((await packFiles(root)).length, 2, 'the good frames went into a new pack');
    const expected = Buffer.from(data);
    for (const r of zeroed) expected.fill(0, r.start, r.end);
    const to = join(work.path, 'salvaged.raw');
    await restoreSnapshot(repo, salvaged.snapshot, { to });
    assert.ok((await readFile(to)).equals(expected), 'the salvaged copy reads as the disk with the damaged blocks zeroed');

    await deleteSnapshot(repo, snapshot.id);
    const pruned = await pruneRepository(repo);
    assert.deepEqual([pruned.packs?.packsDeleted, pruned.packs?.packsRepacked, pruned.packs?.packsKept], [1, 0, 1]);
    assert.deepEqual(await packFiles(root), (await packFiles(root)).filter((p) => p !== pack));
    const again = join(work.path, 'salvaged-after-prune.raw');
    await restoreSnapshot(repo, salvaged.snapshot, { to: again });
    assert.ok((await readFile(again)).equals(expected), 'still, without the damaged pack');
    assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
    const stored = await verifyStored(backend, { trust: repo.storedDigestFingerprint as string });
    assert.deepEqual(stored.damaged, []);
  } finally {
    await repo.close();
  }
});
