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
 *   "location": "/backups/main" }          // where the source was, for people; not trusted
 * ```
 * A note whose destination snapshot is gone (forgotten) means nothing: the snapshot is
 * copied again.
 */
import { CofferError } from '../../errors/index.js';
import type { Repository } from '../repository.js';
import { addSnapshotNote, listSnapshotNotes } from '../snapshot-notes.js';

export const SYNCED_FROM_NOTE = 'synced-from';

/** The data of a `synced-from` note. */
export interface SyncedFrom {
  repository: string;
  snapshot: string;
  location: string;
}

/** Parses a note's data; null when it is not a well-formed `synced-from` record. */
export function parseSyncedFrom(data: unknown): SyncedFrom | null {
  if (typeof data !== 'object' || data === null) return null;
  const d = data as Partial<SyncedFrom>;
  if (typeof d.repository !== 'string' || !/^[0-9a-f]{1,64}$/.test(d.repository)) return null;
  if (typeof d.snapshot !== 'string' || !/^[0-9a-f]{64}$/.test(d.snapshot)) return null;
  return { repository: d.repository, snapshot: d.snapshot, location: typeof d.location === 'string' ? d.location : '' };
}

/** Every well-formed `synced-from` note of `repo`: the copy's id and where it came from. Damaged notes are skipped. */
export async function syncedFromNotes(repo: Repository): Promise<{ copy: string; from: SyncedFrom }[]> {
  const notes = await listSnapshotNotes(repo, { kind: SYNCED_FROM_NOTE, onDamaged: (_key: string, _error: CofferError) => undefined });
  return notes.flatMap((note) => {
    const from = parseSyncedFrom(note.data);
    return from === null ? [] : [{ copy: note.snapshot, from }];
  });
}

/**
 * Source snapshot id → destination snapshot id, for the copies of `sourceRepository`'s
 * snapshots that `destination` holds (`existing`: the ids of its manifests). Damaged notes
 * are skipped (the snapshot is then copied again, which is harmless).
 */
export async function syncedCopies(destination: Repository, sourceRepository: string, existing: ReadonlySet<string>): Promise<Map<string, string>> {
  const copies = new Map<string, string>();
  for (const { copy, from } of await syncedFromNotes(destination)) if (from.repository === sourceRepository && existing.has(copy)) copies.set(from.snapshot, copy);
  return copies;
}

/**
 * The other direction: source snapshot id → destination snapshot id, for the source's
 * snapshots that are copies of snapshots `destination` still holds (their `synced-from` note
 * names the destination repository). A sync back to where a snapshot came from finds the
 * original there instead of adding a second copy under another id, which retention would
 * count as one more restore point.
 */
export async function originalsHeld(source: Repository, destinationRepository: string, existing: ReadonlySet<string>): Promise<Map<string, string>> {
  const originals = new Map<string, string>();
  for (const { copy, from } of await syncedFromNotes(source)) if (from.repository === destinationRepository && existing.has(from.snapshot)) originals.set(copy, from.snapshot);
  return originals;
}

/** Records that destination snapshot `copy` holds source snapshot `from.snapshot`. */
export async function recordSyncedFrom(destination: Repository, copy: string, from: SyncedFrom, time: Date): Promise<void> {
  await addSnapshotNote(destination, copy, SYNCED_FROM_NOTE, from, time);
}
