import type { ObjectId } from '../codec.js';

/**
 * A chunk on its way into the destination: `id` is its id there (known at once), `entry`
 * resolves with its index entry there once it is stored and read back intact.
 */
export interface StoredChunk {
  id: ObjectId;
  entry: Promise<Buffer>;
}

/**
 * Where a sync puts chunks: format 1 (loose-destination.ts, one object per chunk) or format 2
 * (packed-destination.ts, chunks re-packed into new packs, or whole packs adopted). Entries
 * are in the destination's layout: a 32-byte id, or an 80-byte located entry.
 */
export interface DestinationChunks {
  /** The entry of an all-zero block in the destination's index pages. */
  readonly zeroEntry: Buffer;
  /** The destination's entry for chunk `id` when it holds the chunk already; undefined otherwise. */
  find(id: ObjectId): Promise<Buffer | undefined>;
  /**
   * Stores a chunk (plaintext, destination id). Resolves once the destination has taken it
   * (backpressure); its entry may come later ({@link flush}).
   */
  storePlaintext(id: ObjectId, plaintext: Buffer): Promise<StoredChunk>;
  /** Makes every chunk taken so far get its entry (closes a partly filled pack). */
  flush(): Promise<void>;
  /** The end of a disk: every chunk taken has its entry, and what names them (segments) is stored. */
  endDisk(): Promise<void>;
  /** Stops after a failure: what is not stored yet is dropped. */
  abandon(error: unknown): Promise<void>;
}
