/**
 * Tags set after the fact (`coffer tag`, docs/repository-format.md §20). A manifest is
 * immutable (its id is its content's, and parents, notes, protection markers and sync notes
 * name it), so a snapshot's tags are changed by a *tag record* (format/tag-record.ts) under
 * `tags/<snapshot id>.<record id>`, holding the whole list that replaces the manifest's.
 *
 * The newest record (by time, then id) is the snapshot's tags, whole. It is a list, never a
 * change to merge: two administrators tagging one snapshot at once leave the list of one of
 * them (the last writer's), never a mixture that neither wrote, and every reader sees the
 * same one. Without a record, or when none reads, the manifest's tags stand. listSnapshots
 * and loadSnapshot (snapshots.ts) apply it, so every reader (`coffer snapshots`, retention,
 * sync, the server's index) sees the effective tags.
 *
 * Why a prefix of their own, and not a snapshot note: a note's kind is inside its encrypted
 * body, so finding a snapshot's tags among its notes means reading every note of every
 * snapshot listed (test-restore results, synced-from, the tape catalog…); `tags/` is one
 * listing, usually nearly empty, and reads only tag records. And a repository server can tell
 * a tag record by its key: it refuses an append-only token (a guest's agent) any write or
 * delete there, so an agent cannot remove a tag an administrator set for retention
 * (docs/repository-server.md).
 */
import { forEachLimited } from '../concurrency/index.js';
import { CofferError } from '../errors/index.js';
import { ObjectKind } from './format/envelope.js';
import { isValidTag, type SnapshotManifest } from './format/manifest.js';
import { decodeTagRecord, encodeTagRecord } from './format/tag-record.js';
import { snapshotKey, tagRecordKey, TAGS_PREFIX } from './layout.js';
import type { Repository } from './repository.js';
import type { Snapshot } from './snapshots.js';

/** `tags/<snapshot id>.<record id>`. */
export const TAG_RECORD_KEY = /^tags\/([0-9a-f]{64})\.([0-9a-f]{64})$/;

/** The snapshot id a tag record's key names (`tags/<snapshot>.<record>`). */
export function snapshotOfTagRecord(key: string): string {
  const match = TAG_RECORD_KEY.exec(key);
  if (match === null) throw new CofferError('E_USAGE', `${key} is not a tag record's key`);
  return match[1] as string;
}

/** A tag record that reads: its id, time and the tags it sets. */
export interface TagRecord {
  id: string;
  time: string;
  tags: string[];
}

/** How `coffer tag` changes a snapshot's tags: `set` replaces them, then `add` appends, then `remove` takes out. */
export interface TagChange {
  set?: readonly string[] | undefined;
  add?: readonly string[] | undefined;
  remove?: readonly string[] | undefined;
}

/**
 * The record stored under `key` (`tags/<snapshot id>.<record id>`), with the snapshot it
 * tags. Throws `E_MISSING_OBJECT`, or `E_CORRUPT_OBJECT` when it does not open, is malformed
 * or names another snapshot.
 */
export async function readTagRecord(repo: Repository, key: string): Promise<TagRecord & { snapshot: string }> {
  const match = TAG_RECORD_KEY.exec(key);
  if (match === null) throw new CofferError('E_CORRUPT_OBJECT', `${key} is not the name of a tag record`, { subject: { object: key } });
  const [, snapshot, id] = match as unknown as [string, string, string];
  const record = decodeTagRecord(repo.codec.open(await repo.backend.get(key), ObjectKind.tagRecord, key, Buffer.from(id, 'hex')), key);
  if (record.snapshot !== snapshot) throw new CofferError('E_CORRUPT_OBJECT', `tag record ${key} names another snapshot`, { subject: { object: key } });
  return { id, snapshot, time: record.time, tags: record.tags };
}

/**
 * The tag records of one snapshot (`snapshot`: one listing of its own keys), or of those in
 * `snapshots` (one listing of `tags/`; the others' records are not read), or of all, by
 * snapshot. Only tag records are read. A damaged record is reported by `onDamaged` and
 * skipped; one deleted since the listing is skipped.
 *
 * A store that refuses the listing (`E_ACCESS_DENIED`: an append-only token of a repository
 * server older than tag records) reads as no records, so an agent's backups and listings
 * still work there, with the manifests' tags; with `required`, for what decides from the tags
 * (retention), that refusal is thrown instead.
 */
export async function listTagRecords(
  repo: Repository,
  options: { snapshot?: string; snapshots?: ReadonlySet<string>; onDamaged?: (key: string, error: CofferError) => void; required?: boolean } = {},
): Promise<Map<string, TagRecord[]>> {
  const keys: string[] = [];
  try {
    for await (const entry of repo.backend.list(options.snapshot === undefined ? TAGS_PREFIX : `${TAGS_PREFIX}${options.snapshot}.`)) {
      const match = TAG_RECORD_KEY.exec(entry.key);
      if (match !== null && (options.snapshots === undefined || options.snapshots.has(match[1] as string))) keys.push(entry.key);
    }
  } catch (error) {
    if (options.required || !(error instanceof CofferError && error.code === 'E_ACCESS_DENIED')) throw error;
    return new Map();
  }
  const bySnapshot = new Map<string, TagRecord[]>();
  await forEachLimited(keys, 16, async (key) => {
    try {
      const { snapshot, ...record } = await readTagRecord(repo, key);
      bySnapshot.set(snapshot, [...(bySnapshot.get(snapshot) ?? []), record]);
    } catch (error) {
      if (error instanceof CofferError && error.code === 'E_MISSING_OBJECT') return; // superseded since the listing
      if (error instanceof CofferError && error.code === 'E_CORRUPT_OBJECT') return options.onDamaged?.(key, error);
      throw error;
    }
  });
  return bySnapshot;
}

/** The record that decides: the newest by time, then by id (undefined for none). */
export function newestTagRecord(records: readonly TagRecord[]): TagRecord | undefined {
  let newest: TagRecord | undefined;
  for (const record of records) {
    if (newest === undefined || isNewer(record, newest)) newest = record;
  }
  return newest;
}

/** Whether `a` comes after `b` (by time, then by id). */
function isNewer(a: TagRecord, b: TagRecord): boolean {
  const ta = Date.parse(a.time);
  const tb = Date.parse(b.time);
  return ta > tb || (ta === tb && a.id > b.id);
}

/**
 * `snapshot` with the tags of the newest of `records` (its tag records), and `retagged`
 * saying when they were set and what the manifest holds; unchanged without a record.
 */
export function withTagRecords(snapshot: Snapshot, records: readonly TagRecord[]): Snapshot {
  const newest = newestTagRecord(records);
  if (newest === undefined) return snapshot;
  const manifestTags = snapshot.retagged?.manifestTags ?? snapshot.tags;
  return { ...snapshot, tags: [...newest.tags], retagged: { time: newest.time, manifestTags: [...manifestTags] } };
}

/**
 * The manifest exactly as stored (the manifest's own tags, its fields in their order), for
 * what writes a manifest from a snapshot it read (sync's copy, salvage): the effective tags
 * are a tag record's, never the manifest's.
 */
export function storedManifest(snapshot: Snapshot): SnapshotManifest {
  const { id: _id, retagged, ...manifest } = snapshot;
  return retagged === undefined ? manifest : { ...manifest, tags: [...retagged.manifestTags] };
}

/**
 * Writes a tag record of `snapshot` (full id) setting `tags`, timed `time` (one atomic put;
 * not synced). Returns it. An append-only token of a repository server is refused
 * (`E_ACCESS_DENIED`, from the server).
 */
export async function writeTagRecord(repo: Repository, snapshot: string, tags: readonly string[], time: Date): Promise<TagRecord> {
  checkTags(tags);
  const plaintext = encodeTagRecord({ version: 1, snapshot, time: time.toISOString(), tags: [...tags] });
  const objectId = repo.codec.idOf(plaintext);
  const id = objectId.toString('hex');
  await repo.backend.put(tagRecordKey(snapshot, id), repo.codec.seal(plaintext, ObjectKind.tagRecord, objectId));
  return { id, time: time.toISOString(), tags: [...tags] };
}

/**
 * Removes the tag records of `snapshot` that `written` supersedes (older by time, then id):
 * after `written` is durable, never before (a crash in between leaves older records, which
 * the newest-wins rule ignores). A newer record (a concurrent writer's) is left.
 */
export async function deleteSupersededTagRecords(repo: Repository, snapshot: string, written: TagRecord, older: readonly TagRecord[]): Promise<void> {
  for (const record of older) if (record.id !== written.id && isNewer(written, record)) await repo.backend.delete(tagRecordKey(snapshot, record.id));
}

/** Removes every tag record of a snapshot that is forgotten, without reading them. */
export async function deleteTagRecords(repo: Repository, snapshot: string): Promise<void> {
  const keys: string[] = [];
  for await (const entry of repo.backend.list(`${TAGS_PREFIX}${snapshot}.`)) keys.push(entry.key);
  for (const key of keys) await repo.backend.delete(key);
}

/** `E_USAGE` for a tag the manifest could not hold (the rule `backup --tag` applies). */
export function checkTags(tags: readonly string[]): void {
  const bad = tags.find((tag) => !isValidTag(tag));
  if (bad !== undefined) throw new CofferError('E_USAGE', `tag ${JSON.stringify(bad)} is not 1 to 200 printable characters`);
}

/** The tags after `change` (each once, in their first place). `E_USAGE` for a bad tag or one both added and removed. */
export function changedTags(current: readonly string[], change: TagChange): string[] {
  for (const list of [change.set, change.add, change.remove]) checkTags(list ?? []);
  const both = (change.add ?? []).find((tag) => (change.remove ?? []).includes(tag));
  if (both !== undefined) throw new CofferError('E_USAGE', `tag ${JSON.stringify(both)} is both added and removed`);
  const tags = new Set(change.set ?? current);
  for (const tag of change.add ?? []) tags.add(tag);
  for (const tag of change.remove ?? []) tags.delete(tag);
  return [...tags];
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((tag, i) => tag === b[i]);

/** What {@link setSnapshotTags} did. */
export interface TagOutcome {
  /** The snapshot's tags now. */
  tags: string[];
  /** Its tags before (the newest record's, or the manifest's). */
  previous: string[];
  /** The record written; null when the tags were already so (nothing written). */
  record: TagRecord | null;
}

/**
 * Changes the tags of `snapshot` (as listSnapshots or loadSnapshot read it): reads its tag
 * records again, applies `change` to the newest one's tags (or the manifest's), and when that
 * changes them, writes a record with the whole new list (timed `now`, or just after the
 * newest record when a clock behind made `now` older: the record written is the newest),
 * syncs, reads it back, then deletes the records it supersedes (a concurrent tagger's newer
 * record is never among them). A crash in between leaves an older record beside the new
 * one, which the newest-wins rule ignores.
 *
 * A repository server refuses an append-only token (a guest's agent) the write: an agent
 * that could replace the tags could remove one an administrator set for retention, and a
 * forget would then remove the snapshot. That refusal is `E_ACCESS_DENIED`, nothing written
 * (docs/repository-server.md). `E_SNAPSHOT_NOT_FOUND` when the manifest is gone, `E_USAGE`
 * for a bad change.
 */
export async function setSnapshotTags(repo: Repository, snapshot: Snapshot, change: TagChange, options: { now: Date }): Promise<TagOutcome> {
  changedTags([], change); // a bad tag is refused before anything is read
  if (!(await repo.backend.has(snapshotKey(snapshot.id)))) {
    throw new CofferError('E_SNAPSHOT_NOT_FOUND', `no snapshot ${snapshot.id} in ${repo.location}`, { subject: { repository: repo.location, snapshot: snapshot.id } });
  }
  const before = (await listTagRecords(repo, { snapshot: snapshot.id, required: true })).get(snapshot.id) ?? [];
  const newest = newestTagRecord(before);
  const previous = newest?.tags ?? snapshot.retagged?.manifestTags ?? snapshot.tags;
  const tags = changedTags(previous, change);
  if (sameList(tags, previous)) return { tags, previous, record: null };
  const time = new Date(Math.max(options.now.getTime(), newest === undefined ? 0 : Date.parse(newest.time) + 1));
  let written: TagRecord;
  try {
    written = await writeTagRecord(repo, snapshot.id, tags, time);
  } catch (error) {
    if (!(error instanceof CofferError && error.code === 'E_ACCESS_DENIED')) throw error;
    throw new CofferError(
      'E_ACCESS_DENIED',
      `${repo.location} does not let this token change tags (an append-only token may not: a tag kept for retention, once removed, lets forget remove the snapshot); tag with a full-access token`,
      { subject: { repository: repo.location, snapshot: snapshot.id }, cause: error },
    );
  }
  await repo.backend.sync();
  const after = (await listTagRecords(repo, { snapshot: snapshot.id, required: true })).get(snapshot.id) ?? [];
  if (!after.some((record) => record.id === written.id)) {
    throw new CofferError('E_BACKEND_IO', `the tag record ${written.id.slice(0, 8)} of snapshot ${snapshot.id.slice(0, 8)} does not read back`, { subject: { repository: repo.location, snapshot: snapshot.id } });
  }
  await deleteSupersededTagRecords(repo, snapshot.id, written, before);
  return { tags, previous, record: written };
}
