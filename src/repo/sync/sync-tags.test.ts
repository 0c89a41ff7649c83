/**
 * Tags set with `coffer tag` (a tag record) follow a snapshot to its copies (carry-tags.ts),
 * between local repositories of both formats with other keys, and of format 2 with the same
 * keys: the copy's manifest stays the source's as stored (same keys: the same id), a record
 * written before the first sync or after it reaches the copy, a copy retagged at the
 * destination since keeps its tags until the source is tagged again, and the copy's records
 * a carried one supersedes are removed. A destination that refuses tag records (an
 * append-only token) leaves the copy as it is and the report says so.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CofferError } from '../../errors/index.js';
import { backupBytes, closedAfter, seededBytes, tempFolders } from '../../testing/index.js';
import { ForwardingBackend, initRepository, listSnapshots, listTagRecords, LocalBackend, openRepository, setSnapshotTags, syncSnapshots, type FormatVersion, type Repository, type Snapshot } from '../index.js';

const KiB = 1024;
const opened = closedAfter<Repository>();
const tempFolder = tempFolders();
const tempDir = (prefix: string): Promise<string> => tempFolder(`coffer-sync-tags-${prefix}`);

async function newRepo(format: FormatVersion, passphrase: string | null): Promise<Repository> {
  const local = new LocalBackend(await tempDir('repo'));
  await initRepository(local, { passphrase, format, kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  return opened(await openRepository(local, { passphrase: passphrase ?? undefined, threads: 1 }));
}

const at = (iso: string) => ({ now: new Date(iso) });
const byId = async (repo: Repository, id: string): Promise<Snapshot> => (await listSnapshots(repo)).find((s) => s.id === id) as Snapshot;

for (const { format, sameKeys } of [{ format: 2, sameKeys: false }, { format: 1, sameKeys: false }, { format: 2, sameKeys: true }] as const) {
  test(`format ${format}, ${sameKeys ? 'the same keys' : 'other keys'}: tags set with coffer tag follow the snapshot to its copy, the newest record winning across repositories`, async () => {
    const src = await newRepo(format, sameKeys ? null : 'source');
    const dst = await newRepo(format, sameKeys ? null : 'destination');
    const a = await backupBytes(src, 'web', seededBytes(1, 128 * KiB), '2026-11-20T00:00:00Z', await tempDir('disk'), { tags: ['nightly'] });
    const b = await backupBytes(src, 'web', seededBytes(2, 128 * KiB), '2026-11-21T00:00:00Z', await tempDir('disk'));
    await setSnapshotTags(src, await byId(src, a.id), { add: ['legal-hold'] }, at('2026-11-22T00:00:00Z'));

    const first = await syncSnapshots(src, dst);
    assert.deepEqual(first.snapshots.map((s) => [s.source, s.status, s.tagsCarried]), [[a.id, 'copied', ['nightly', 'legal-hold']], [b.id, 'copied', undefined]]);
    const copyOfA = await byId(dst, first.snapshots[0]?.destination as string);
    const copyOfB = await byId(dst, first.snapshots[1]?.destination as string);
    assert.deepEqual(copyOfA.tags, ['nightly', 'legal-hold']);
    assert.deepEqual(copyOfA.retagged, { time: '2026-11-22T00:00:00.000Z', manifestTags: ['nightly'] }, 'the manifest is the source\'s, tags and all');
    if (sameKeys) assert.equal(copyOfA.id, a.id, 'the same keys: the manifest copied as stored keeps its id');

    // Tagged after the first sync: the next one carries it to the copy already there.
    await setSnapshotTags(src, await byId(src, b.id), { add: ['incident-4711'] }, at('2026-11-23T00:00:00Z'));
    const second = await syncSnapshots(src, dst);
    assert.deepEqual(second.snapshots.map((s) => [s.status, s.tagsCarried]), [['present', undefined], ['present', ['incident-4711']]]);
    assert.deepEqual((await byId(dst, copyOfB.id)).tags, ['incident-4711']);

    // Retagged at the destination since: a sync leaves it; the source tagged again later wins.
    await setSnapshotTags(dst, copyOfA, { add: ['offsite-only'] }, at('2026-11-24T00:00:00Z'));
    const third = await syncSnapshots(src, dst);
    assert.equal(third.snapshots[0]?.tagsCarried, undefined);
    assert.deepEqual((await byId(dst, copyOfA.id)).tags, ['nightly', 'legal-hold', 'offsite-only']);
    await setSnapshotTags(src, await byId(src, a.id), { remove: ['legal-hold'] }, at('2026-11-25T00:00:00Z'));
    assert.deepEqual((await syncSnapshots(src, dst)).snapshots[0]?.tagsCarried, ['nightly']);
    assert.deepEqual((await byId(dst, copyOfA.id)).tags, ['nightly']);
    // The copy's records the carried one supersedes are gone: one record per snapshot.
    assert.deepEqual([...(await listTagRecords(dst)).values()].map((records) => records.length), [1, 1]);
  });
}

/** What a repository server does for an append-only token: it refuses any put under `tags/`. */
class RefusesTags extends ForwardingBackend {
  override put(key: string, data: Uint8Array): Promise<void> {
    if (key.startsWith('tags/')) return Promise.reject(new CofferError('E_ACCESS_DENIED', `an append-only token may not write ${key}`));
    return super.put(key, data);
  }
}

test('a destination that refuses tag records (an append-only token) gets the copy, untagged, and the report names the tags it refused', async () => {
  const src = await newRepo(2, 'source');
  const folder = await tempDir('refusing');
  await initRepository(new LocalBackend(folder), { passphrase: 'destination', format: 2, kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  const dst = opened(await openRepository(new RefusesTags(new LocalBackend(folder)), { passphrase: 'destination', threads: 1 }));
  const a = await backupBytes(src, 'web', seededBytes(3, 128 * KiB), '2026-11-20T00:00:00Z', await tempDir('disk'), { tags: ['nightly'] });
  await setSnapshotTags(src, await byId(src, a.id), { add: ['legal-hold'] }, at('2026-11-22T00:00:00Z'));
  const report = await syncSnapshots(src, dst);
  assert.deepEqual(report.snapshots.map((s) => [s.status, s.tagsCarried, s.tagsRefused]), [['copied', undefined, ['nightly', 'legal-hold']]]);
  assert.deepEqual((await byId(dst, report.snapshots[0]?.destination as string)).tags, ['nightly']);
});
