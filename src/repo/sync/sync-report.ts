import type { ErrorCode } from '../../errors/index.js';

/** What happened to one source snapshot. */
export interface SyncedSnapshot {
  /** The source snapshot's id. */
  source: string;
  vm: string;
  time: string;
  /**
   * `copied` now, `present` already (an earlier sync) and whole, `healed`: present, but chunks
   * it names (a file snapshot's: chunks or trees) were missing or damaged in the destination
   * and were sent again (`chunksHealed`, `treesHealed`),
   * `failed` (see `error`; a copy already there that could not be made whole keeps its
   * `destination`), or `skipped`: the destination's format cannot hold it (`error` says so; no
   * current pair of formats skips anything, kept for the report's stability).
   */
  status: 'copied' | 'present' | 'healed' | 'failed' | 'skipped';
  /** The destination snapshot's id (null when it failed to be copied). */
  destination: string | null;
  /** `healed`: the chunks of the copy that were missing or damaged in the destination and were sent again. */
  chunksHealed?: number;
  /** `healed`, a file snapshot: the trees (directories) of the copy that were missing or damaged in the destination and were stored again (since 2026-11-30). */
  treesHealed?: number;
  /** The tags (`coffer tag` on the source) this sync set on the copy with a tag record (carry-tags.ts). */
  tagsCarried?: string[];
  /**
   * The tags (`coffer tag` on the source) that should have followed to the copy but that the
   * destination refused to record (a repository server's append-only token may not write tag
   * records): the copy keeps its own tags.
   */
  tagsRefused?: string[];
  error?: { code: ErrorCode; message: string };
}

/**
 * The figures of a sync. Bytes are stored (sealed) bytes as the backends moved them, not
 * plaintext; manifests and notes (a few KB a snapshot) are not counted.
 */
export interface SyncCounters {
  /** Chunks read from the source (those whose destination id had to be learned, or that were sent). */
  chunksRead: number;
  /** Chunks written to the destination. */
  chunksSent: number;
  /** Their stored bytes: what the destination lacked (format 2: the packs and segments holding them). */
  chunkBytesSent: number;
  /** Format 2 destination: packs written for re-packed chunks. */
  packsWritten: number;
  /** Format 2 to format 2 with the same keys: packs copied whole (every chunk of them was needed). */
  packsCopied: number;
  /** Chunks read from the source that the destination turned out to have already. */
  chunksPresent: number;
  /** Chunk entries taken from the destination's copy of an earlier snapshot, unread. */
  chunksReused: number;
  /** Index pages written to the destination, and their bytes. */
  indexPagesSent: number;
  indexBytesSent: number;
  /** Index pages taken whole from the destination's copy of an earlier snapshot, unread. */
  indexPagesReused: number;
  /** File trees (file snapshots' directories) written to the destination, and their bytes. */
  treesSent: number;
  treeBytesSent: number;
  /** File trees taken whole from the destination (an earlier copy's, or present under shared keys), unread. */
  treesReused: number;
  /**
   * Distinct chunks named by the copies already in the destination (disk and file snapshots)
   * that were checked there (heal-copies.ts): each found in one listing of the destination's
   * data, or, with `readData`, read and opened.
   */
  chunksChecked: number;
  /** Of those, chunks missing or damaged in the destination, sent again from the source. */
  chunksHealed: number;
  /**
   * File trees of the copies already there that were missing or damaged in the destination,
   * translated again from the source and stored again (heal-file-copies.ts; since 2026-11-30).
   * Also counted in `treesSent`, with any tree below them the destination lacked.
   */
  treesHealed: number;
  /** Bytes read from the source backend (chunks, index pages and trees). */
  bytesRead: number;
  /** Bytes written to the destination backend (chunks, index pages and trees). */
  bytesWritten: number;
  /** Bytes read back from the destination: what was written, checked, and earlier copies' pages. */
  bytesReadFromDestination: number;
}

/** The result of {@link syncSnapshots}. */
export interface SyncReport extends SyncCounters {
  source: string;
  destination: string;
  /** Both repositories share their keys: objects were copied as stored, ids unchanged. */
  sameKeys: boolean;
  snapshots: SyncedSnapshot[];
  copied: number;
  present: number;
  /** Copies already there that were missing chunks and were made whole. */
  healed: number;
  failed: number;
  skipped: number;
}

/** Progress of a sync: the snapshot being copied and how far, in bytes of its disks (of its files, for a file snapshot). */
export interface SyncProgress {
  snapshot: string;
  vm: string;
  /** 1-based position among the snapshots to copy, of `snapshots`. */
  index: number;
  snapshots: number;
  done: number;
  total: number;
  counters: Readonly<SyncCounters>;
}

export function emptyCounters(): SyncCounters {
  return {
    chunksRead: 0,
    chunksSent: 0,
    chunkBytesSent: 0,
    packsWritten: 0,
    packsCopied: 0,
    chunksPresent: 0,
    chunksReused: 0,
    indexPagesSent: 0,
    indexBytesSent: 0,
    indexPagesReused: 0,
    treesSent: 0,
    treeBytesSent: 0,
    treesReused: 0,
    chunksChecked: 0,
    chunksHealed: 0,
    treesHealed: 0,
    bytesRead: 0,
    bytesWritten: 0,
    bytesReadFromDestination: 0,
  };
}
