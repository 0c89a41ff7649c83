/**
 * Format 1 prune retires a quarantine marker (quarantine-retire.ts) once the chunk object reads
 * again (a backup stored it again), or once the chunk is gone and no snapshot uses it; never
 * while the chunk is missing and used, or while the damaged object is still there (Object Lock
 * kept it from verify's delete). Format 2's: prune-damaged-packs.test.ts.
 */
import assert from 'node:assert/strict';
import { open, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CofferError } from '../errors/index.js';
import { backupFile, makeTempDir, seededBytes, withRepo } from '../testing/index.js';
import { ForwardingBackend } from './backend/forwarding-backend.js';
import { LocalBackend } from './backend/local-backend.js';
import { listQuarantined } from './damage.js';
import { pruneRepository } from './prune.js';
import { initRepository, type Repository } from './repository.js';
import { deleteSnapshot, type Snapshot } from './snapshots.js';
import { verifyRepository } from './verify.js';

const MiB = 1024 * 1024;
const BLOCK = 64 * 1024;
let work: { path: string; remove(): Promise<void> };
let made = 0;

before(async () => {
  work = await makeTempDir('coffer-prune-quarantine');
});
after(() => work.remove());

async function newRepo(): Promise<string> {
  const root = join(work.path, `repo-${++made}`);
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 1 });
  return root;
}

async function image(): Promise<string> {
  const path = join(work.path, `disk-${++made}.raw`);
  await writeFile(path, seededBytes(40 + made, 1 * MiB));
  return path;
}

async function backup(repo: Repository, path: string): Promise<Snapshot> {
  return backupFile(repo, 'vm', path);
}

/** Flips a byte in the middle of the first chunk object: the chunk verify then sets aside. */
async function corruptAChunk(root: string): Promise<void> {
  const [folder] = (await readdir(join(root, 'chunks'))).sort();
  const [name] = (await readdir(join(root, 'chunks', folder as string))).sort();
  const handle = await open(join(root, 'chunks', folder as string, name as string), 'r+');
  try {
    const { size } = await handle.stat();
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, Math.floor(size / 2));
    byte[0] = (byte[0] as number) ^ 0xff;
    await handle.write(byte, 0, 1, Math.floor(size / 2));
  } finally {
    await handle.close();
  }
}

async function quarantine(repo: Repository): Promise<void> {
  assert.equal((await verifyRepository(repo, { readData: true, now: () => new Date() })).quarantined, 1);
}

test('format 1 prune keeps the marker of a chunk still missing, and retires it once a backup stored the chunk again', async () => {
  const root = await newRepo();
  const path = await image();
  await withRepo(new LocalBackend(root), async (repo) => {
    await backup(repo, path);
    await corruptAChunk(root);
    await quarantine(repo);

    const early = await pruneRepository(repo);
    assert.deepEqual([early.quarantineRetired, (await listQuarantined(repo)).size], [0, 1], 'the chunk is missing and used: the marker stays');

    assert.equal((await backup(repo, path)).stats.bytesNew, BLOCK, 'the heal');
    const dry = await pruneRepository(repo, { dryRun: true });
    assert.deepEqual([dry.quarantineRetired, (await listQuarantined(repo)).size], [1, 1], 'a dry run says so and deletes nothing');
    const report = await pruneRepository(repo);
    assert.deepEqual([report.quarantineRetired, (await listQuarantined(repo)).size], [1, 0]);
    assert.equal((await backup(repo, path)).stats.bytesNew, 0, 'the next backup deduplicates against the healed chunk');
    assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
  });
});

test('format 1 prune retires the marker of a chunk no snapshot uses any more', async () => {
  const root = await newRepo();
  const path = await image();
  await withRepo(new LocalBackend(root), async (repo) => {
    const first = await backup(repo, path);
    await corruptAChunk(root);
    await quarantine(repo);
    await deleteSnapshot(repo, first.id);
    const report = await pruneRepository(repo);
    assert.deepEqual([report.quarantineRetired, (await listQuarantined(repo)).size], [1, 0]);
  });
});

test('format 1 prune keeps the marker while the damaged chunk object is still there (Object Lock refused verify\'s delete), and retires it once a backup wrote the chunk over it', async () => {
  const root = await newRepo();
  const path = await image();
  await withRepo(new LocalBackend(root), (repo) => backup(repo, path));
  await corruptAChunk(root);
  /** Refuses every delete of a chunk object, as a store does while its retention lasts. */
  class Locked extends ForwardingBackend {
    override delete(key: string): Promise<void> {
      if (key.startsWith('chunks/')) return Promise.reject(new CofferError('E_OBJECT_LOCKED', `${key} is locked`));
      return super.delete(key);
    }
  }
  await withRepo(new Locked(new LocalBackend(root)), quarantine);
  assert.equal((await readdir(join(root, 'chunks'), { recursive: true })).filter((name) => /[0-9a-f]{64}$/.test(name)).length, 16, 'the damaged object is still there');
  await withRepo(new LocalBackend(root), async (repo) => {
    const early = await pruneRepository(repo);
    assert.deepEqual([early.quarantineRetired, (await listQuarantined(repo)).size], [0, 1], 'the damaged object does not read: the marker stays');
    assert.equal((await backup(repo, path)).stats.bytesNew, BLOCK, 'the heal writes a good object over the damaged one');
    const report = await pruneRepository(repo);
    assert.deepEqual([report.quarantineRetired, (await listQuarantined(repo)).size], [1, 0]);
    assert.equal((await backup(repo, path)).stats.bytesNew, 0);
    assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
  });
});
