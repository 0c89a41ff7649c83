/**
 * The `synced-from` snapshot note: what a destination remembers of the snapshots `coffer
 * sync` copied into it. Between repositories with different keys a copy has another id (its
 * index pages and manifest are rewritten with the destination's ids), so the note is how a
 * later sync knows the source snapshot is already there, and which destination snapshot holds
 * the same blocks (its entries are reused by position, unread). Stored as a snapshot note
 * (format/snapshot-note.ts) on the destination snapshot, kind `synced-from`, data:
 *
 * ```json
 * { "repository": "<32 hex: the source repository's config id>",
 *   "snapshot": "<64 hex: the source snapshot's id>",
 *   "location": "/backups/main",           // where the source was, for people; not trusted
 *   "origins": [{ "repository": "…", "snapshot": "…" }] }   // optional (2026-11-29)
 * ```
 * `origins`: what the source snapshot was itself a copy of (its own note's `repository` and
 * `snapshot`, then that note's `origins`), so that a chain of syncs (A → B → C) still knows
 * that C's copy is A's snapshot: a sync C → A, or A → C, finds it there (see
 * {@link copiesHeld}). At most {@link MAX_ORIGINS}. A note whose destination snapshot is gone
 * (forgotten) means nothing: the snapshot is copied again.
 */
import { CofferError } from '../../errors/index.js';
import type { Repository } from '../repository.js';
import { addSnapshotNote, listSnapshotNotes } from '../snapshot-notes.js';

export const SYNCED_FROM_NOTE = 'synced-from';

/** One snapshot in one repository: a link in a chain of copies. */
export interface SnapshotOrigin {
  repository: string;
  snapshot: string;
}

/** The data of a `synced-from` note. */
export interface SyncedFrom extends SnapshotOrigin {
  location: string;
  /** What the source snapshot was a copy of, nearest first (absent in notes before 2026-11-29). */
  origins?: SnapshotOrigin[];
}

/** Links of a chain kept in a note: more than any real chain of offsite copies. */
export const MAX_ORIGINS = 16;

function parseOrigin(data: unknown): SnapshotOrigin | null {
  if (typeof data !== 'object' || data === null) return null;
  const d = data as Partial<SnapshotOrigin>;
  if (typeof d.repository !== 'string' || !/^[0-9a-f]{1,64}$/.test(d.repository)) return null;
  if (typeof d.snapshot !== 'string' || !/^[0-9a-f]{64}$/.test(d.snapshot)) return null;
  return { repository: d.repository, snapshot: d.snapshot };
}

/** Parses a note's data; null when it is not a well-formed `synced-from` record (malformed origins are dropped). */
export function parseSyncedFrom(data: unknown): SyncedFrom | null {
  const origin = parseOrigin(data);
  if (origin === null) return null;
  const d = data as { location?: unknown; origins?: unknown };
  const origins = Array.isArray(d.origins) ? d.origins.slice(0, MAX_ORIGINS).map(parseOrigin).filter((o): o is SnapshotOrigin => o !== null) : [];
  return { ...origin, location: typeof d.location === 'string' ? d.location : '', ...(origins.length > 0 ? { origins } : {}) };
}

/** A `synced-from` note: the copy's id and where it came from. */
export interface SyncedFromNote {
  copy: string;
  from: SyncedFrom;
}

/** Every well-formed `synced-from` note of `repo`. Damaged notes are skipped. */
export async function syncedFromNotes(repo: Repository): Promise<SyncedFromNote[]> {
  const notes = await listSnapshotNotes(repo, { kind: SYNCED_FROM_NOTE, onDamaged: (_key: string, _error: CofferError) => undefined });
  return notes.flatMap((note) => {
    const from = parseSyncedFrom(note.data);
    return from === null ? [] : [{ copy: note.snapshot, from }];
  });
}

/**
 * Source snapshot id → destination snapshot id, for the source's snapshots the destination
 * holds already under another id: a copy of it (the destination's note names it), the
 * original it is a copy of (its own note names a destination snapshot: a sync back to where
 * it came from adds no second copy, which retention would count as one more restore point),
 * or another copy of the same original (a chain A → B → C, then A → C or C → A: the notes'
 * `origins`). Only snapshots in `sourceIds` and `existing` (the destination's manifests) count.
 */
export async function copiesHeld(
  source: { repository: string; notes: readonly SyncedFromNote[] },
  destination: Repository,
  sourceIds: ReadonlySet<string>,
  existing: ReadonlySet<string>,
): Promise<Map<string, string>> {
  const key = (o: SnapshotOrigin) => `${o.repository}/${o.snapshot}`;
  // Every name a destination snapshot goes by: its own, and every snapshot it is a copy of.
  const held = new Map<string, string>();
  for (const id of existing) held.set(key({ repository: destination.config.id, snapshot: id }), id);
  for (const { copy, from } of await syncedFromNotes(destination)) {
    if (!existing.has(copy)) continue;
    for (const origin of [from, ...(from.origins ?? [])]) held.set(key(origin), copy);
  }
  const found = new Map<string, string>();
  const look = (sourceId: string, origins: SnapshotOrigin[]) => {
    for (const origin of origins) {
      const copy = held.get(key(origin));
      if (copy !== undefined && !found.has(sourceId)) found.set(sourceId, copy);
    }
  };
  for (const id of sourceIds) look(id, [{ repository: source.repository, snapshot: id }]);
  for (const { copy, from } of source.notes) if (sourceIds.has(copy)) look(copy, [from, ...(from.origins ?? [])]);
  return found;
}

/**
 * What a copy of `snapshot` is a copy of, for its note's `origins`: from the source's notes
 * (`notes`), the snapshot's own note, if it has one, and that note's origins.
 */
export function originsOf(notes: readonly SyncedFromNote[], snapshot: string): SnapshotOrigin[] {
  const note = notes.find((n) => n.copy === snapshot);
  if (note === undefined) return [];
  return [{ repository: note.from.repository, snapshot: note.from.snapshot }, ...(note.from.origins ?? [])].slice(0, MAX_ORIGINS);
}

/** Records that destination snapshot `copy` holds source snapshot `from.snapshot`. */
export async function recordSyncedFrom(destination: Repository, copy: string, from: SyncedFrom, time: Date): Promise<void> {
  await addSnapshotNote(destination, copy, SYNCED_FROM_NOTE, from, time);
}
