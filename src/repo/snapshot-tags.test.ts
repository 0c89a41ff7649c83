/**
 * Tags set after the fact (`tags` notes, snapshot-tags.ts) on a real local repository: the
 * newest note wins whole, whatever order the notes were written in, for every reader alike;
 * malformed and damaged notes never decide; the manifest written back from a retagged snapshot
 * is the stored one; setSnapshotTags writes a note that wins even with a clock behind, removes
 * the notes it supersedes, writes nothing for no change, and refuses a partial view.
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
import { encodeManifest } from './format/manifest.js';
import { initRepository, openRepository, type Repository } from './repository.js';
import { addSnapshotNote, listSnapshotNotes } from './snapshot-notes.js';
import { setSnapshotTags, storedManifest, TAGS_NOTE } from './snapshot-tags.js';
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

test('the newest tags note (by time, then id) sets the tags whole, whatever order the notes were written in', async () => {
  const s = await manifestSnapshot('newest', ['nightly']);
  assert.deepEqual(await tagsOf(s.id), ['nightly'], 'no note: the manifest\'s tags');
  // The newer note is written first: time decides, not the order of writing.
  await addSnapshotNote(repo, s.id, TAGS_NOTE, { tags: ['nightly', 'legal-hold'] }, at('2026-11-26T00:00:00Z'));
  await addSnapshotNote(repo, s.id, TAGS_NOTE, { tags: ['before-upgrade'] }, at('2026-11-25T00:00:00Z'));
  assert.deepEqual(await tagsOf(s.id), ['nightly', 'legal-hold']);
  const loaded = await loadSnapshot(repo, s.id);
  assert.deepEqual(loaded.retagged, { time: '2026-11-26T00:00:00.000Z', manifestTags: ['nightly'] });
  // What a sync writes from it is the stored manifest: same bytes, same id.
  assert.equal(repo.codec.idOf(encodeManifest(storedManifest(loaded))).toString('hex'), s.id);

  // Two notes of the same time: the greater id wins, for every reader alike.
  const t = at('2026-11-27T00:00:00Z');
  const a = await addSnapshotNote(repo, s.id, TAGS_NOTE, { tags: ['a'] }, t);
  const b = await addSnapshotNote(repo, s.id, TAGS_NOTE, { tags: ['b'] }, t);
  assert.deepEqual(await tagsOf(s.id), a.id > b.id ? ['a'] : ['b']);

  // A newer note that is malformed (not a list, a tag the manifest could not hold) decides nothing.
  await addSnapshotNote(repo, s.id, TAGS_NOTE, { tags: 'x' }, at('2026-11-28T00:00:00Z'));
  await addSnapshotNote(repo, s.id, TAGS_NOTE, { tags: ['bad\ttag'] }, at('2026-11-28T00:00:01Z'));
  // Another kind never sets tags.
  await addSnapshotNote(repo, s.id, 'test-restore', { tags: ['not-a-tag-note'] }, at('2026-11-29T00:00:00Z'));
  assert.deepEqual(await tagsOf(s.id), a.id > b.id ? ['a'] : ['b']);

  // A newer note that does not open (tampered) is passed over, and the listing still works.
  const tampered = await addSnapshotNote(repo, s.id, TAGS_NOTE, { tags: ['tampered'] }, at('2026-11-30T00:00:00Z'));
  const file = join(root, 'notes', `${s.id}.${tampered.id}`);
  const bytes = await readFile(file);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 5) ^ 1, bytes.length - 5);
  await writeFile(file, bytes);
  assert.deepEqual(await tagsOf(s.id), a.id > b.id ? ['a'] : ['b']);

  // Forget removes the tags notes with the snapshot.
  await deleteSnapshot(repo, s.id);
  assert.deepEqual((await readdir(join(root, 'notes'))).filter((name) => name.startsWith(s.id)), []);
});

test('setSnapshotTags: add, remove, set; its note wins with a clock behind; superseded notes go; no change writes nothing', async () => {
  const s = await manifestSnapshot('set', ['nightly']);
  const notes = async () => (await listSnapshotNotes(repo, { snapshot: s.id, kind: TAGS_NOTE })).map((n) => n.time);
  const added = await setSnapshotTags(repo, await loadSnapshot(repo, s.id), { add: ['legal-hold', 'incident-4711'] }, { now: at('2026-11-26T10:00:00Z') });
  assert.deepEqual([added.previous, added.tags], [['nightly'], ['nightly', 'legal-hold', 'incident-4711']]);
  // Another host's clock is a day behind: its note still comes after the newest, and wins.
  const removed = await setSnapshotTags(repo, await loadSnapshot(repo, s.id), { remove: ['nightly'] }, { now: at('2026-11-25T10:00:00Z') });
  assert.deepEqual(removed.tags, ['legal-hold', 'incident-4711']);
  assert.equal(removed.note?.time, '2026-11-26T10:00:00.001Z');
  assert.deepEqual(await tagsOf(s.id), ['legal-hold', 'incident-4711']);
  assert.deepEqual(await notes(), ['2026-11-26T10:00:00.001Z'], 'the superseded note is removed');
  // Nothing to change: no note.
  const same = await setSnapshotTags(repo, await loadSnapshot(repo, s.id), { add: ['legal-hold'] }, { now: at('2026-11-27T00:00:00Z') });
  assert.equal(same.note, null);
  assert.deepEqual(await notes(), ['2026-11-26T10:00:00.001Z']);
  // From a stale read (a snapshot loaded before another tagger wrote): the newest note is read again first.
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

/** What a repository server's append-only token sees: its listings outside its own prefixes are refused. */
class AppendOnlyView extends ForwardingBackend {
  override list(prefix: string): AsyncIterable<BackendEntry> {
    if (prefix === 'config') throw new CofferError('E_ACCESS_DENIED', 'an append-only token may not list config');
    return super.list(prefix);
  }
}

test('setSnapshotTags refuses a partial (append-only) view and writes nothing', async () => {
  const s = await manifestSnapshot('partial', ['nightly']);
  const partial = await openRepository(new AppendOnlyView(new LocalBackend(root)), { passphrase: 'pw', threads: 1 });
  try {
    await assert.rejects(setSnapshotTags(partial, await loadSnapshot(partial, s.id), { remove: ['nightly'] }, { now: new Date() }), (error: unknown) => isCofferError(error, 'E_ACCESS_DENIED'));
    assert.deepEqual(await listSnapshotNotes(repo, { snapshot: s.id }), []);
  } finally {
    await partial.close();
  }
});
