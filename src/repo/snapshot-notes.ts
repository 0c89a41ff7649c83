import { forEachLimited } from '../concurrency/index.js';
import { CofferError } from '../errors/index.js';
import { ObjectKind } from './format/envelope.js';
import { decodeSnapshotNote, encodeSnapshotNote, NOTE_KIND, type SnapshotNote } from './format/snapshot-note.js';
import { noteKey, NOTES_PREFIX } from './layout.js';
import type { Repository } from './repository.js';

/** `notes/<snapshot id>.<note id>`. */
export const NOTE_KEY = /^notes\/([0-9a-f]{64})\.([0-9a-f]{64})$/;

/** A stored note with its object id. */
export interface StoredSnapshotNote extends SnapshotNote {
  id: string;
}

/** Adds a note about a snapshot (see format/snapshot-note.ts); returns it with its id. */
export async function addSnapshotNote(repo: Repository, snapshot: string, kind: string, data: unknown, time = new Date()): Promise<StoredSnapshotNote> {
  if (!NOTE_KIND.test(kind)) throw new RangeError(`bad note kind ${JSON.stringify(kind)}`);
  const note: SnapshotNote = { version: 1, snapshot, kind, time: time.toISOString(), data };
  const plaintext = encodeSnapshotNote(note);
  const objectId = repo.codec.idOf(plaintext);
  const id = objectId.toString('hex');
  await repo.backend.put(noteKey(snapshot, id), repo.codec.seal(plaintext, ObjectKind.snapshotNote, objectId));
  return { id, ...note };
}

/**
 * The notes of one snapshot (or of all, without `snapshot`), oldest first (by time, then
 * id), optionally of one kind. A damaged note is reported by `onDamaged` and skipped, or
 * throws `E_CORRUPT_OBJECT` without it. A note's kind is inside its encrypted body: every
 * note listed is read (what a reader needs after every listing belongs under its own prefix,
 * as tag records are, snapshot-tags.ts).
 */
export async function listSnapshotNotes(
  repo: Repository,
  options: { snapshot?: string; kind?: string; onDamaged?: (key: string, error: CofferError) => void } = {},
): Promise<StoredSnapshotNote[]> {
  const keys: string[] = [];
  for await (const entry of repo.backend.list(`${NOTES_PREFIX}${options.snapshot ?? ''}`)) {
    if (NOTE_KEY.test(entry.key)) keys.push(entry.key);
  }
  const notes: StoredSnapshotNote[] = [];
  await forEachLimited(keys, 16, async (key) => {
    try {
      const note = await readSnapshotNote(repo, key);
      if (options.kind === undefined || note.kind === options.kind) notes.push(note);
    } catch (error) {
      if (error instanceof CofferError && error.code === 'E_CORRUPT_OBJECT' && options.onDamaged) return options.onDamaged(key, error);
      if (error instanceof CofferError && error.code === 'E_MISSING_OBJECT') return; // deleted since it was listed
      throw error;
    }
  });
  return notes.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
}

/** The note stored under `key` (`notes/<snapshot id>.<note id>`). Throws `E_MISSING_OBJECT`, or `E_CORRUPT_OBJECT` when it does not open, is malformed or names another snapshot. */
export async function readSnapshotNote(repo: Repository, key: string): Promise<StoredSnapshotNote> {
  const match = NOTE_KEY.exec(key);
  if (match === null) throw new CofferError('E_CORRUPT_OBJECT', `${key} is not the name of a snapshot note`, { subject: { object: key } });
  const [, snapshot, id] = match as unknown as [string, string, string];
  const note = decodeSnapshotNote(repo.codec.open(await repo.backend.get(key), ObjectKind.snapshotNote, key, Buffer.from(id, 'hex')), key);
  if (note.snapshot !== snapshot) throw new CofferError('E_CORRUPT_OBJECT', `snapshot note ${key} names another snapshot`, { subject: { object: key } });
  return { id, ...note };
}

/**
 * Kinds of notes that outlive their snapshot: the media catalog (`tape`) must still say which
 * tape holds a snapshot after it is forgotten from the repository — that is when it is needed.
 */
export const LASTING_NOTE_KINDS: ReadonlySet<string> = new Set(['tape']);

/**
 * Removes the notes of a snapshot that is forgotten, except the lasting kinds
 * ({@link LASTING_NOTE_KINDS}); a note that cannot be read is removed.
 */
export async function deleteSnapshotNotes(repo: Repository, snapshot: string): Promise<void> {
  const damaged: string[] = [];
  const notes = await listSnapshotNotes(repo, { snapshot, onDamaged: (key) => damaged.push(key) });
  for (const note of notes) if (!LASTING_NOTE_KINDS.has(note.kind)) await repo.backend.delete(noteKey(snapshot, note.id));
  for (const key of damaged) await repo.backend.delete(key);
}

/** Removes one note (e.g. one superseded by a newer note of the same kind). */
export async function deleteSnapshotNote(repo: Repository, snapshot: string, id: string): Promise<void> {
  await repo.backend.delete(noteKey(snapshot, id));
}
