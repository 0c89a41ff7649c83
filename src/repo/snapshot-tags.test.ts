/**
 * Tags set after the fact (tag records under `tags/`, snapshot-tags.ts) on a real local
 * repository: the newest record wins whole, whatever order the records were written in, for
 * every reader alike; malformed and damaged records never decide, nor does a note; the
 * manifest written back from a retagged snapshot is the stored one; setSnapshotTags writes a
 * record that wins even with a clock behind, removes the records it supersedes, writes
 * nothing for no change, and reports a store's refusal; listing snapshots reads no note.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CofferError, isCofferError } from '../errors/index.js';
import { ForwardingBackend } from './backend/forwarding-backend.js';
import { LocalBackend } from './backend/local-backend.js';
import type { BackendEntry } from './backend/backend.js';
import { ObjectKind } from './format/envelope.js';
import { encodeManifest } from './format/manifest.js';
import { tagRecordKey } from './layout.js';
import { initRepository, openRepository, type Repository } from './repository.js';
import { addSnapshotNote } from './snapshot-notes.js';
import { listTagRecords, setSnapshotTags, storedManifest, writeTagRecord } from './snapshot-tags.js';
import { deleteSnapshot, listSnapshots, loadSnapshot, saveSnapshot, type Snapshot } from './snapshots.js';

let root: string;
let repo: Repository;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'coffer-tags-'));
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 } });
  repo = await openRepository(new LocalBackend(root), { passphrase: 'pw', threads: 1 });
});
after(async () => {
  await repo.close();
  await rm(root, { recursive: true, force: true });
});

/** A manifest with an empty disk (no pages needed), enough to exist as a snapshot. */
function manifestSnapshot(vm: string, tags: string[]): Promise<Snapshot> {
  return saveSnapshot(repo, {
    version: 1, vm, time: '2026-11-24T00:00:00.000Z', hostname: 'h', tags, parent: null, definition: null,
    disks: [{ name: 'disk0', size: 0, sourceFormat: 'raw', source: '/dev/null', blockSize: 65536, entriesPerPage: 4096, pages: [] }],
    stats: { bytesLogical: 0, bytesRead: 0, bytesNew: 0, bytesStored: 0, durationMs: 0 },
  });
}

const at = (iso: string) => new Date(iso);
/** What listSnapshots and loadSnapshot both say a snapshot's tags are (they must agree). */
async function tagsOf(id: string): Promise<string[]> {
  const listed = (await listSnapshots(repo)).find((s) => s.id === id);
  const loaded = await loadSnapshot(repo, id);
  assert.deepEqual(listed?.tags, loaded.tags, 'listSnapshots and loadSnapshot agree');
  return loaded.tags;
}

/** Seals `body` as a tag record of `snapshot` (what writeTagRecord would refuse to write: a malformed one). */
async function putRawRecord(snapshot: string, body: unknown): Promise<void> {
  const plaintext = Buffer.from(JSON.stringify(body));
  const id = repo.codec.idOf(plaintext);
  await repo.backend.put(tagRecordKey(snapshot, id.toString('hex')), repo.codec.seal(plaintext, ObjectKind.tagRecord, id));
}

test('the newest tag record (by time, then id) sets the tags whole, whatever order the records were written in', async () => {
  const s = await manifestSnapshot('newest', ['nightly']);
  assert.deepEqual(await tagsOf(s.id), ['nightly'], 'no record: the manifest\'s tags');
  // The newer record is written first: time decides, not the order of writing.
  await writeTagRecord(repo, s.id, ['nightly', 'legal-hold'], at('2026-11-26T00:00:00Z'));
  await writeTagRecord(repo, s.id, ['before-upgrade'], at('2026-11-25T00:00:00Z'));
  assert.deepEqual(await tagsOf(s.id), ['nightly', 'legal-hold']);
  const loaded = await loadSnapshot(repo, s.id);
  assert.deepEqual(loaded.retagged, { time: '2026-11-26T00:00:00.000Z', manifestTags: ['nightly'] });
  // What a sync writes from it is the stored manifest: same bytes, same id.
  assert.equal(repo.codec.idOf(encodeManifest(storedManifest(loaded))).toString('hex'), s.id);

  // Two records of the same time: the greater id wins, for every reader alike.
  const t = at('2026-11-27T00:00:00Z');
  const a = await writeTagRecord(repo, s.id, ['a'], t);
  const b = await writeTagRecord(repo, s.id, ['b'], t);
  const winner = a.id > b.id ? ['a'] : ['b'];
  assert.deepEqual(await tagsOf(s.id), winner);

  // A newer record that is malformed (not a list, a tag the manifest could not hold, another snapshot's) decides nothing.
  await putRawRecord(s.id, { version: 1, snapshot: s.id, time: '2026-11-28T00:00:00.000Z', tags: 'x' });
  await putRawRecord(s.id, { version: 1, snapshot: s.id, time: '2026-11-28T00:00:01.000Z', tags: ['bad\ttag'] });
  await putRawRecord(s.id, { version: 1, snapshot: 'f'.repeat(64), time: '2026-11-28T00:00:02.000Z', tags: ['moved'] });
  // Nor does a note of kind `tags` (what tags were before they had a prefix: an agent may write notes).
  await addSnapshotNote(repo, s.id, 'tags', { tags: ['not-a-tag-record'] }, at('2026-11-29T00:00:00Z'));
  assert.deepEqual(await tagsOf(s.id), winner);

  // A newer record that does not open (tampered) is passed over, and the listing still works.
  const tampered = await writeTagRecord(repo, s.id, ['tampered'], at('2026-11-30T00:00:00Z'));
  const file = join(root, 'tags', `${s.id}.${tampered.id}`);
  const bytes = await readFile(file);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 5) ^ 1, bytes.length - 5);
  await writeFile(file, bytes);
  assert.deepEqual(await tagsOf(s.id), winner);
  const damaged: string[] = [];
  await listSnapshots(repo, { onDamagedTags: (key) => damaged.push(key) });
  assert.equal(damaged.length, 4, 'the damaged and malformed records are named');
  assert.ok(damaged.includes(`tags/${s.id}.${tampered.id}`));

  // Forget removes the tag records with the snapshot.
  await deleteSnapshot(repo, s.id);
  assert.deepEqual((await readdir(join(root, 'tags'))).filter((name) => name.startsWith(s.id)), []);
});

test('setSnapshotTags: add, remove, set; its record wins with a clock behind; superseded records go; no change writes nothing', async () => {
  const s = await manifestSnapshot('set', ['nightly']);
  const records = async () => ((await listTagRecords(repo, { snapshot: s.id })).get(s.id) ?? []).map((r) => r.time);
  const added = await setSnapshotTags(repo, await loadSnapshot(repo, s.id), { add: ['legal-hold', 'incident-4711'] }, { now: at('2026-11-26T10:00:00Z') });
  assert.deepEqual([added.previous, added.tags], [['nightly'], ['nightly', 'legal-hold', 'incident-4711']]);
  // Another host's clock is a day behind: its record still comes after the newest, and wins.
  const removed = await setSnapshotTags(repo, await loadSnapshot(repo, s.id), { remove: ['nightly'] }, { now: at('2026-11-25T10:00:00Z') });
  assert.deepEqual(removed.tags, ['legal-hold', 'incident-4711']);
  assert.equal(removed.record?.time, '2026-11-26T10:00:00.001Z');
  assert.deepEqual(await tagsOf(s.id), ['legal-hold', 'incident-4711']);
  assert.deepEqual(await records(), ['2026-11-26T10:00:00.001Z'], 'the superseded record is removed');
  // Nothing to change: no record.
  const same = await setSnapshotTags(repo, await loadSnapshot(repo, s.id), { add: ['legal-hold'] }, { now: at('2026-11-27T00:00:00Z') });
  assert.equal(same.record, null);
  assert.deepEqual(await records(), ['2026-11-26T10:00:00.001Z']);
  // From a stale read (a snapshot loaded before another tagger wrote): the newest record is read again first.
  const stale = await loadSnapshot(repo, s.id);
  await setSnapshotTags(repo, stale, { set: ['before-upgrade'] }, { now: at('2026-11-27T00:00:00Z') });
  assert.deepEqual((await setSnapshotTags(repo, stale, { add: ['x'] }, { now: at('2026-11-27T00:00:01Z') })).tags, ['before-upgrade', 'x']);
  const cleared = await setSnapshotTags(repo, await loadSnapshot(repo, s.id), { set: [] }, { now: at('2026-11-28T00:00:00Z') });
  assert.deepEqual(cleared.tags, []);
  assert.deepEqual(await tagsOf(s.id), []);
  assert.deepEqual((await loadSnapshot(repo, s.id)).retagged?.manifestTags, ['nightly']);

  const usage = (error: unknown) => isCofferError(error, 'E_USAGE');
  await assert.rejects(setSnapshotTags(repo, stale, { add: ['a\nb'] }, { now: new Date() }), usage);
  await assert.rejects(setSnapshotTags(repo, stale, { add: [''] }, { now: new Date() }), usage);
  await assert.rejects(setSnapshotTags(repo, stale, { add: ['a'], remove: ['a'] }, { now: new Date() }), usage);
  await deleteSnapshot(repo, s.id);
  await assert.rejects(setSnapshotTags(repo, stale, { add: ['a'] }, { now: new Date() }), (error: unknown) => isCofferError(error, 'E_SNAPSHOT_NOT_FOUND'));
});

/** Counts what is read, per prefix: the GETs of every object and the LISTs asked for. */
class CountingBackend extends ForwardingBackend {
  readonly gets: string[] = [];
  readonly lists: string[] = [];
  override get(key: string): Promise<Buffer> {
    this.gets.push(key);
    return super.get(key);
  }
  override list(prefix: string): AsyncIterable<BackendEntry> {
    this.lists.push(prefix);
    return super.list(prefix);
  }
}

test('listing snapshots reads no note: one listing of tags/, and only the tag records of retagged snapshots', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-tags-count-'));
  try {
    await initRepository(new LocalBackend(dir), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 } });
    const setup = await openRepository(new LocalBackend(dir), { passphrase: 'pw', threads: 1 });
    const ids: string[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const s = await saveSnapshot(setup, {
          version: 1, vm: 'counted', time: `2026-11-2${i}T00:00:00.000Z`, hostname: 'h', tags: [], parent: null, definition: null,
          disks: [{ name: 'disk0', size: 0, sourceFormat: 'raw', source: '/dev/null', blockSize: 65536, entriesPerPage: 4096, pages: [] }],
          stats: { bytesLogical: 0, bytesRead: 0, bytesNew: 0, bytesStored: 0, durationMs: 0 },
        });
        ids.push(s.id);
        // Every snapshot has its test-restore, synced-from and tape notes, as a busy repository's do.
        for (const kind of ['test-restore', 'synced-from', 'tape']) await addSnapshotNote(setup, s.id, kind, { n: i }, at('2026-11-25T00:00:00Z'));
      }
      await setSnapshotTags(setup, await loadSnapshot(setup, ids[1] as string), { add: ['legal-hold'] }, { now: at('2026-11-26T00:00:00Z') });
    } finally {
      await setup.close();
    }
    const counting = new CountingBackend(new LocalBackend(dir));
    const counted = await openRepository(counting, { passphrase: 'pw', threads: 1 });
    try {
      counting.gets.length = 0;
      counting.lists.length = 0;
      const listed = await listSnapshots(counted);
      assert.deepEqual(listed.map((s) => s.tags), [[], ['legal-hold'], [], []]);
      const byPrefix = (keys: string[]) => keys.reduce((n, key) => n.set(key.split('/')[0] as string, (n.get(key.split('/')[0] as string) ?? 0) + 1), new Map<string, number>());
      assert.deepEqual(Object.fromEntries(byPrefix(counting.gets)), { snapshots: 4, tags: 1 }, 'no GET of a note; one of the one tag record');
      assert.deepEqual(counting.lists, ['snapshots/', 'tags/']);
      counting.gets.length = 0;
      counting.lists.length = 0;
      assert.deepEqual((await loadSnapshot(counted, ids[1] as string)).tags, ['legal-hold']);
      assert.deepEqual(Object.fromEntries(byPrefix(counting.gets)), { snapshots: 1, tags: 1 });
      assert.deepEqual(counting.lists, [`tags/${ids[1]}.`]);
    } finally {
      await counted.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** What a repository server does for an append-only token (access-policy.ts): it refuses any put under `tags/`. */
class AppendOnlyView extends ForwardingBackend {
  override put(key: string, data: Uint8Array): Promise<void> {
    if (key.startsWith('tags/')) return Promise.reject(new CofferError('E_ACCESS_DENIED', `an append-only token may not write ${key}`));
    return super.put(key, data);
  }
}

test('setSnapshotTags through a store that refuses tag records (an append-only token) says so and writes nothing', async () => {
  const s = await manifestSnapshot('partial', ['nightly']);
  await setSnapshotTags(repo, s, { add: ['legal-hold'] }, { now: at('2026-11-26T00:00:00Z') });
  const partial = await openRepository(new AppendOnlyView(new LocalBackend(root)), { passphrase: 'pw', threads: 1 });
  try {
    const seen = await loadSnapshot(partial, s.id);
    assert.deepEqual(seen.tags, ['nightly', 'legal-hold'], 'it reads the effective tags');
    await assert.rejects(setSnapshotTags(partial, seen, { remove: ['legal-hold'] }, { now: new Date() }), (error: unknown) => isCofferError(error, 'E_ACCESS_DENIED') && /full-access token/.test((error as Error).message));
    assert.deepEqual(((await listTagRecords(repo, { snapshot: s.id })).get(s.id) ?? []).map((r) => r.tags), [['nightly', 'legal-hold']]);
  } finally {
    await partial.close();
  }
});

/** A repository server older than tag records: it refuses an append-only token the listing of `tags/`. */
class OldServerView extends ForwardingBackend {
  override list(prefix: string): AsyncIterable<BackendEntry> {
    if (prefix.startsWith('tags/')) throw new CofferError('E_ACCESS_DENIED', `an append-only token may not list ${prefix}`);
    return super.list(prefix);
  }
}

test('a store that refuses the listing of tag records reads as none, except for retention (requireTags), which fails', async () => {
  const s = await manifestSnapshot('old-server', ['nightly']);
  await setSnapshotTags(repo, s, { add: ['legal-hold'] }, { now: at('2026-11-26T00:00:00Z') });
  const old = await openRepository(new OldServerView(new LocalBackend(root)), { passphrase: 'pw', threads: 1 });
  try {
    assert.deepEqual((await loadSnapshot(old, s.id)).tags, ['nightly'], 'the manifest\'s tags');
    assert.deepEqual((await listSnapshots(old)).find((x) => x.id === s.id)?.tags, ['nightly']);
    await assert.rejects(listSnapshots(old, { requireTags: true }), (error: unknown) => isCofferError(error, 'E_ACCESS_DENIED'));
  } finally {
    await old.close();
  }
});
