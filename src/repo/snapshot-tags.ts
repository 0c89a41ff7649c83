/**
 * Tags set after the fact (`coffer tag`, docs/repository-format.md §11). A manifest is
 * immutable (its id is its content's, and parents, notes, protection markers and sync notes
 * name it), so a snapshot's tags are changed by a snapshot note of kind `tags` whose data is
 * the whole list that replaces the manifest's:
 *
 * ```json
 * { "tags": ["nightly", "legal-hold"] }     // each tag 1..200 characters, no control character
 * ```
 *
 * The newest `tags` note (by time, then id, as for every kind) is the snapshot's tags, whole.
 * It is a list, never a change to merge: two administrators tagging one snapshot at once leave
 * the list of one of them (the last writer's), never a mixture that neither wrote, and every
 * reader sees the same one. Without a `tags` note, or when none reads and is well formed, the
 * manifest's tags stand. listSnapshots and loadSnapshot (snapshots.ts) apply it, so every
 * reader (`coffer snapshots`, retention, sync, the server's index) sees the effective tags.
 */
import { CofferError } from '../errors/index.js';
import { isValidTag, type SnapshotManifest } from './format/manifest.js';
import { snapshotKey } from './layout.js';
import type { Repository } from './repository.js';
import { addSnapshotNote, deleteSnapshotNote, listSnapshotNotes, type StoredSnapshotNote } from './snapshot-notes.js';
import type { Snapshot } from './snapshots.js';

/** The note kind that replaces a snapshot's tags. */
export const TAGS_NOTE = 'tags';

/** A well-formed `tags` note: its id, time and the tags it sets. */
export interface TagsNote {
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

/** The `tags` note `note` is, or undefined when it is another kind or its data is malformed. */
export function tagsNoteOf(note: StoredSnapshotNote): TagsNote | undefined {
  if (note.kind !== TAGS_NOTE) return undefined;
  const tags = (note.data as { tags?: unknown } | null)?.tags;
  if (!Array.isArray(tags) || !tags.every(isValidTag)) return undefined;
  return { id: note.id, time: note.time, tags: [...tags] };
}

/** The well-formed `tags` notes among `notes`, by the snapshot they are about. */
export function tagsNotesBySnapshot(notes: readonly StoredSnapshotNote[]): Map<string, TagsNote[]> {
  const bySnapshot = new Map<string, TagsNote[]>();
  for (const note of notes) {
    const tags = tagsNoteOf(note);
    if (tags !== undefined) bySnapshot.set(note.snapshot, [...(bySnapshot.get(note.snapshot) ?? []), tags]);
  }
  return bySnapshot;
}

/** The note that decides: the newest by time, then by id (undefined for none). */
export function newestTagsNote(notes: readonly TagsNote[]): TagsNote | undefined {
  let newest: TagsNote | undefined;
  for (const note of notes) {
    if (newest === undefined || note.time > newest.time || (note.time === newest.time && note.id > newest.id)) newest = note;
  }
  return newest;
}

/**
 * `snapshot` with the tags of the newest of `notes` (its `tags` notes), and `retagged` saying
 * when they were set and what the manifest holds; unchanged without a note.
 */
export function withTagsNotes(snapshot: Snapshot, notes: readonly TagsNote[]): Snapshot {
  const newest = newestTagsNote(notes);
  if (newest === undefined) return snapshot;
  const manifestTags = snapshot.retagged?.manifestTags ?? snapshot.tags;
  return { ...snapshot, tags: [...newest.tags], retagged: { time: newest.time, manifestTags: [...manifestTags] } };
}

/**
 * The manifest exactly as stored (the manifest's own tags, its fields in their order), for
 * what writes a manifest from a snapshot it read (sync's copy): the effective tags are a
 * note's, never the manifest's.
 */
export function storedManifest(snapshot: Snapshot): SnapshotManifest {
  const { id: _id, retagged, ...manifest } = snapshot;
  return retagged === undefined ? manifest : { ...manifest, tags: [...retagged.manifestTags] };
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
  /** Its tags before (the newest note's, or the manifest's). */
  previous: string[];
  /** The note written; null when the tags were already so (nothing written). */
  note: TagsNote | null;
}

/**
 * Changes the tags of `snapshot` (as listSnapshots or loadSnapshot read it): reads its `tags`
 * notes again, applies `change` to the newest one's tags (or the manifest's), and when that
 * changes them, writes a `tags` note with the whole new list (timed `now`, or just after the
 * newest note when a clock behind made `now` older: the note written is the newest), syncs,
 * reads it back, then deletes the `tags` notes it read before (superseded; a concurrent
 * tagger's newer note is never among them). A crash in between leaves an older note beside
 * the new one, which the newest-wins rule ignores.
 *
 * Needs a connection that sees every note: through a repository server's append-only token
 * the notes other writers made are hidden (the tags an administrator set would be dropped
 * unseen) and removing a tag another one set for retention could let a forget remove the
 * snapshot: `E_ACCESS_DENIED` (docs/repository-server.md). `E_SNAPSHOT_NOT_FOUND` when the
 * manifest is gone, `E_USAGE` for a bad change.
 */
export async function setSnapshotTags(repo: Repository, snapshot: Snapshot, change: TagChange, options: { now: Date }): Promise<TagOutcome> {
  changedTags([], change); // a bad tag is refused before anything is read
  await requireWholeView(repo);
  if (!(await repo.backend.has(snapshotKey(snapshot.id)))) {
    throw new CofferError('E_SNAPSHOT_NOT_FOUND', `no snapshot ${snapshot.id} in ${repo.location}`, { subject: { repository: repo.location, snapshot: snapshot.id } });
  }
  const before = (await listSnapshotNotes(repo, { snapshot: snapshot.id, kind: TAGS_NOTE, onDamaged: () => undefined })).flatMap((note) => tagsNoteOf(note) ?? []);
  const newest = newestTagsNote(before);
  const previous = newest?.tags ?? snapshot.retagged?.manifestTags ?? snapshot.tags;
  const tags = changedTags(previous, change);
  if (sameList(tags, previous)) return { tags, previous, note: null };
  const time = new Date(Math.max(options.now.getTime(), newest === undefined ? 0 : Date.parse(newest.time) + 1));
  const written = await addSnapshotNote(repo, snapshot.id, TAGS_NOTE, { tags }, time);
  await repo.backend.sync();
  const damaged: string[] = [];
  const after = await listSnapshotNotes(repo, { snapshot: snapshot.id, kind: TAGS_NOTE, onDamaged: (key) => damaged.push(key) });
  if (!after.some((note) => note.id === written.id)) {
    throw new CofferError('E_BACKEND_IO', `the tags note ${written.id.slice(0, 8)} of snapshot ${snapshot.id.slice(0, 8)} does not read back`, { subject: { repository: repo.location, snapshot: snapshot.id } });
  }
  for (const old of before) await deleteSnapshotNote(repo, snapshot.id, old.id);
  return { tags, previous, note: { id: written.id, time: written.time, tags } };
}

/**
 * `E_ACCESS_DENIED` unless this connection sees every object: a repository server refuses
 * an append-only token any listing outside the prefixes it writes (docs/repository-server.md),
 * `config` among them, and answers every other backend's listing.
 */
async function requireWholeView(repo: Repository): Promise<void> {
  try {
    for await (const _entry of repo.backend.list('config')) break;
  } catch (error) {
    if (!(error instanceof CofferError && error.code === 'E_ACCESS_DENIED')) throw error;
    throw new CofferError(
      'E_ACCESS_DENIED',
      `${repo.location} gives this token a partial view (append-only): it cannot see the tags others set, and may not replace them (a tag kept for retention, once removed, lets forget remove the snapshot); tag with a full-access token`,
      { subject: { repository: repo.location }, cause: error },
    );
  }
}
