import type { CofferError } from '../../errors/index.js';
import type { Repository } from '../repository.js';
import { listSnapshotNotes } from '../snapshot-notes.js';
import { tapeRecordOf } from '../snapshot-records.js';
import { listSnapshots } from '../snapshots.js';
import { TAPE_NOTE, type TapeNoteData } from './tape-export.js';

/** One entry of the media catalog: a snapshot written to (or imported from) a tape set. */
export interface TapeCatalogEntry {
  /** The snapshot's id (64 hex). */
  snapshot: string;
  /** The snapshot's VM and time, or null on entries an import wrote (they are not on the tape in clear). */
  vm: string | null;
  time: string | null;
  /** False once the snapshot was forgotten: the entry still says which tapes to import it back from. */
  inRepository: boolean;
  /** The tape set (32 hex), or null when the note lacks it. */
  tapeSet: string | null;
  /** The volumes holding the snapshot's objects, with where they were written (a device or a file). */
  volumes: { sequence: number; name: string }[];
  /** When the note was written (ISO 8601 UTC): the end of the export, or of the import. */
  written: string;
  /** True when `tape import` wrote the entry (the snapshot came from this tape). */
  imported: boolean;
}

export interface TapeCatalogOptions {
  /** The ids of the repository's snapshots, when the caller has them (a cached listing); read from the repository otherwise. */
  snapshotIds?: ReadonlySet<string>;
  onDamaged?: (key: string, error: CofferError) => void;
}

/**
 * The media catalog of a repository (docs/tape-format.md §7): every snapshot note of kind
 * `tape`, oldest first, with whether its snapshot is still in the repository (a damaged
 * manifest counts as present). Read by
 * `coffer tape catalog` and the server's API alike. A damaged note is reported by `onDamaged`
 * and skipped (without it: `E_CORRUPT_OBJECT`).
 */
export async function readTapeCatalog(repo: Repository, options: TapeCatalogOptions = {}): Promise<TapeCatalogEntry[]> {
  const present = options.snapshotIds ?? (await presentSnapshots(repo));
  const notes = await listSnapshotNotes(repo, { kind: TAPE_NOTE, ...(options.onDamaged === undefined ? {} : { onDamaged: options.onDamaged }) });
  return notes.map((note) => {
    const data = (typeof note.data === 'object' && note.data !== null ? note.data : {}) as Partial<TapeNoteData>;
    const { tapeSet, volumes, written, imported } = tapeRecordOf(note);
    return {
      snapshot: note.snapshot,
      vm: typeof data.vm === 'string' ? data.vm : null,
      time: typeof data.time === 'string' ? data.time : null,
      inRepository: present.has(note.snapshot),
      tapeSet,
      volumes,
      written,
      imported,
    };
  });
}

async function presentSnapshots(repo: Repository): Promise<Set<string>> {
  // A damaged manifest still counts as present: the snapshot was not forgotten (verify reports the damage).
  const present = new Set<string>();
  for (const s of await listSnapshots(repo, { onDamaged: (id) => present.add(id) })) present.add(s.id);
  return present;
}
