/**
 * Protection markers on a real local repository, encrypted and not: protect, replace,
 * unprotect, the refusal to delete, and what a damaged, moved or doubled marker means.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { FaultyBackend } from './backend/faulty-backend.js';
import { LocalBackend } from './backend/local-backend.js';
import { initRepository, openRepository, type Repository } from './repository.js';
import { listProtections, protectionOf, protectSnapshot, unprotectSnapshot } from './protection.js';
import { deleteSnapshot, listSnapshots, saveSnapshot, type Snapshot } from './snapshots.js';

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function newRepo(encrypted: boolean): Promise<{ root: string; repo: Repository }> {
  const root = await mkdtemp(join(tmpdir(), 'coffer-protect-'));
  roots.push(root);
  const backend = new LocalBackend(root);
  await initRepository(backend, { passphrase: encrypted ? 'pw' : null, kdf: { N: 1024, r: 8, p: 1 } });
  return { root, repo: await openRepository(backend, { passphrase: 'pw', threads: 1 }) };
}

/** A manifest with an empty disk (no pages needed), enough to exist as a snapshot. */
function manifestSnapshot(repo: Repository, vm: string, time: string): Promise<Snapshot> {
  return saveSnapshot(repo, {
    version: 1, vm, time, hostname: 'h', tags: [], parent: null, definition: null,
    disks: [{ name: 'disk0', size: 0, sourceFormat: 'raw', source: '/dev/null', blockSize: 65536, entriesPerPage: 4096, pages: [] }],
    stats: { bytesLogical: 0, bytesRead: 0, bytesNew: 0, bytesStored: 0, durationMs: 0 },
  });
}

const markerFiles = async (root: string) => (await readdir(join(root, 'protected')).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();

for (const encrypted of [true, false]) {
  test(`protect, re-protect and unprotect (${encrypted ? 'encrypted' : 'unencrypted'})`, async () => {
    const { root, repo } = await newRepo(encrypted);
    try {
      const a = await manifestSnapshot(repo, 'a', '2026-11-24T00:00:00.000Z');
      const b = await manifestSnapshot(repo, 'a', '2026-11-25T00:00:00.000Z');
      assert.equal(await protectionOf(repo, a.id), null);

      const first = await protectSnapshot(repo, a.id, { reason: 'legal hold #42', now: new Date('2026-11-26T10:00:00Z') });
      assert.deepEqual(first, { snapshot: a.id, time: '2026-11-26T10:00:00.000Z', reason: 'legal hold #42', damaged: false });
      assert.deepEqual(await protectionOf(repo, a.id), first);
      assert.equal(await protectionOf(repo, b.id), null);
      assert.deepEqual([...(await listProtections(repo)).keys()], [a.id]);
      const files = await markerFiles(root);
      assert.equal(files.length, 1);
      assert.match(files[0] as string, new RegExp(`^${a.id}\\.[0-9a-f]{64}$`));
      if (encrypted) assert.ok(!(await readFile(join(root, 'protected', files[0] as string))).includes('legal hold'), 'the reason is stored in clear');

      await assert.rejects(deleteSnapshot(repo, a.id), (e) => isCofferError(e, 'E_SNAPSHOT_PROTECTED'));
      assert.equal((await listSnapshots(repo)).length, 2);

      // Protecting again replaces the reason and leaves one marker.
      await protectSnapshot(repo, a.id, { reason: null, now: new Date('2026-11-27T10:00:00Z') });
      assert.deepEqual(await protectionOf(repo, a.id), { snapshot: a.id, time: '2026-11-27T10:00:00.000Z', reason: null, damaged: false });
      assert.equal((await markerFiles(root)).length, 1);

      assert.equal(await unprotectSnapshot(repo, a.id), true);
      assert.equal(await unprotectSnapshot(repo, a.id), false);
      assert.equal(await protectionOf(repo, a.id), null);
      await deleteSnapshot(repo, a.id);
      assert.deepEqual((await listSnapshots(repo)).map((s) => s.id), [b.id]);
    } finally {
      await repo.close();
    }
  });
}

test('a damaged or moved marker still protects; a missing snapshot or a bad reason is refused', async () => {
  const { root, repo } = await newRepo(true);
  try {
    const a = await manifestSnapshot(repo, 'a', '2026-11-24T00:00:00.000Z');
    const b = await manifestSnapshot(repo, 'a', '2026-11-25T00:00:00.000Z');
    const c = await manifestSnapshot(repo, 'a', '2026-11-26T00:00:00.000Z');
    await protectSnapshot(repo, a.id, { reason: 'r', now: new Date('2026-11-26T10:00:00Z') });
    const [name] = await markerFiles(root);
    const marker = await readFile(join(root, 'protected', name as string));

    // A's marker copied under B's id: it opens, but names A inside, so it is damaged as B's; B is kept all the same.
    await writeFile(join(root, 'protected', (name as string).replace(a.id, b.id)), marker);
    assert.deepEqual(await protectionOf(repo, b.id), { snapshot: b.id, time: null, reason: null, damaged: true });
    await assert.rejects(deleteSnapshot(repo, b.id), (e) => isCofferError(e, 'E_SNAPSHOT_PROTECTED'));

    // A flipped byte: damaged, still protected.
    const flipped = Buffer.from(marker);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
    await writeFile(join(root, 'protected', (name as string).replace(a.id, c.id)), flipped);
    assert.equal((await protectionOf(repo, c.id))?.damaged, true);
    assert.deepEqual(new Set((await listProtections(repo)).keys()), new Set([a.id, b.id, c.id]));
    assert.equal((await listProtections(repo)).get(a.id)?.damaged, false);

    await assert.rejects(protectSnapshot(repo, 'f'.repeat(64), { now: new Date() }), (e) => isCofferError(e, 'E_SNAPSHOT_NOT_FOUND'));
    await assert.rejects(protectSnapshot(repo, a.id, { reason: 'two\nlines', now: new Date() }), (e) => isCofferError(e, 'E_USAGE'));
    await assert.rejects(protectSnapshot(repo, a.id, { reason: 'x'.repeat(201), now: new Date() }), (e) => isCofferError(e, 'E_USAGE'));
  } finally {
    await repo.close();
  }
});

test('a re-protect that dies before deleting the old marker leaves the snapshot protected, with the newer reason', async () => {
  const { root, repo: plain } = await newRepo(true);
  const a = await manifestSnapshot(plain, 'a', '2026-11-24T00:00:00.000Z');
  await protectSnapshot(plain, a.id, { reason: 'old', now: new Date('2026-11-26T10:00:00Z') });
  await plain.close();
  const faulty = new FaultyBackend(new LocalBackend(root), [{ method: 'delete', keyPrefix: 'protected/', nth: 1, code: 'E_BACKEND_IO' }]);
  const repo = await openRepository(faulty, { passphrase: 'pw', threads: 1 });
  try {
    await assert.rejects(protectSnapshot(repo, a.id, { reason: 'new', now: new Date('2026-11-27T10:00:00Z') }), (e) => isCofferError(e, 'E_BACKEND_IO'));
    assert.deepEqual(faulty.unexercised(), []);
    assert.equal((await markerFiles(root)).length, 2);
    assert.equal((await protectionOf(repo, a.id))?.reason, 'new');
    assert.equal(await unprotectSnapshot(repo, a.id), true);
    assert.deepEqual(await markerFiles(root), []);
  } finally {
    await repo.close();
  }
});
