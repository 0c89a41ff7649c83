import { randomBytes } from 'node:crypto';
import { CofferError } from '../../errors/index.js';
import type { ObjectId } from '../codec.js';
import { ObjectKind } from '../format/envelope.js';
import { entryId } from '../format/located-entry.js';
import { MAX_CHUNKS_PER_FRAME } from '../format/pack.js';
import { MovedChunks } from '../moved-chunks.js';
import { ChunksById } from '../chunks-by-id.js';
import type { Repository } from '../repository.js';
import type { DestinationChunks, StoredChunk } from './destination-chunks.js';
import { LooseDestination } from './loose-destination.js';
import { PackedDestination } from './packed-destination.js';
import { SourceChunks } from './source-chunks.js';
import type { SyncCounters } from './sync-report.js';

/**
 * Translations remembered, so that a chunk met again in one sync (a block repeated
 * on a disk, a chunk shared by two VMs) is not read twice: 64 Ki entries (~20 MB), that is
 * 16 GiB of distinct data at the default block size; the oldest are forgotten beyond that.
 */
const REMEMBERED_TRANSLATIONS = 65_536;

/**
 * A format 2 destination's pack writers, as a backup's (docs/repository-format.md §19.10):
 * chunks up to 64 to a frame (a frame still closes at 2 MiB, so image blocks come 8 to a
 * frame and small file chunks many), and file trees in packs of their own closing at 4 MiB.
 * A pack of chunks also closes at 8,192 chunks: every chunk of a pack waits for it to be
 * stored and read back, and 8 MiB of small files' chunks compressed is ~50,000 of them
 * (100,000 small files: the main thread's heap peaked at 360 MB, 2026-11-27).
 */
const CHUNK_PACKS = { blocksPerFrame: MAX_CHUNKS_PER_FRAME, chunksPerPack: 8192 };
const TREE_PACKS = { blocksPerFrame: MAX_CHUNKS_PER_FRAME, packSize: 4 * 1024 * 1024 };

/**
 * True when both repositories seal and id objects alike (same master key, or both
 * unencrypted): a probe sealed by one opens in the other under the same id. Objects can then
 * be copied as stored.
 */
export function shareKeys(src: Repository, dst: Repository): boolean {
  if (src.encrypted !== dst.encrypted) return false;
  const probe = randomBytes(64);
  const id = src.codec.idOf(probe);
  if (!id.equals(dst.codec.idOf(probe))) return false;
  try {
    dst.codec.open(src.codec.seal(probe, ObjectKind.chunk, id), ObjectKind.chunk, 'key probe', id);
    return true;
  } catch {
    return false;
  }
}

/**
 * Moves one chunk at a time from the source to the destination, unless the destination has
 * it, and answers the chunk's entry in the destination. Both sides may be of either format
 * (source-chunks.ts reads, loose-destination.ts / packed-destination.ts write).
 *
 * - Same keys: the id is the same. Between two format 1 repositories the stored bytes are
 *   checked (opened and rehashed with the source's key) and copied as they are; a chunk in a
 *   pack adopted whole (format 2 to format 2, whole-packs.ts) keeps its entry, unread;
 *   otherwise the chunk is read and stored in the destination's format.
 * - Different keys: the chunk is read with the source's key (authenticated: nothing damaged is
 *   carried over), its destination id computed (HMAC under the destination's id key), and,
 *   when the destination lacks it, stored with the destination's key.
 */
export class ChunkTransfer {
  private readonly translated = new Map<string, Promise<StoredChunk>>();
  private readonly source: SourceChunks;
  private treeDestination: Promise<PackedDestination> | undefined;
  /** Format 2 source: file chunks and trees by id, through its index segments. */
  readonly sourceById: ChunksById | undefined;
  /** Format 2 destination: trees of earlier copies by id. */
  readonly destinationById: ChunksById | undefined;
  /**
   * Format 2 destination: ids of the trees this sync stored (its chunk index, loaded at the
   * start, does not know them), so a tree met again in a later snapshot is not stored twice.
   * Bounded as {@link REMEMBERED_TRANSLATIONS}; beyond it a tree may be stored again (space, never a wrong entry).
   */
  private readonly treesStored = new Set<string>();

  private constructor(
    private readonly src: Repository,
    private readonly dst: Repository,
    readonly destination: DestinationChunks,
    private readonly options: { sameKeys: boolean; counters: SyncCounters; signal?: AbortSignal | undefined },
  ) {
    this.source = new SourceChunks(src, options.counters);
    this.sourceById = src.config.version === 2 ? new ChunksById(src) : undefined;
    this.destinationById = dst.config.version === 2 ? new ChunksById(dst) : undefined;
  }

  /** A transfer into `dst`, whose chunks it lists (format 1) or whose chunk index it loads (format 2). */
  static async open(src: Repository, dst: Repository, options: { sameKeys: boolean; counters: SyncCounters; signal?: AbortSignal | undefined }): Promise<ChunkTransfer> {
    const destination = dst.config.version === 2 ? await PackedDestination.open(dst, options.counters, { writer: CHUNK_PACKS }) : await LooseDestination.open(dst, options.counters);
    return new ChunkTransfer(src, dst, destination, options);
  }

  /** Whether both repositories share their keys (ids are the same on both sides). */
  get sameKeys(): boolean {
    return this.options.sameKeys;
  }

  /** The format 2 destination whose packs may be adopted whole (same keys, format 2 on both sides), else null. */
  get wholePacks(): PackedDestination | null {
    return this.sameKeys && this.src.config.version === 2 && this.destination instanceof PackedDestination ? this.destination : null;
  }

  /**
   * Format 2 destination: where file trees go (packs of their own, sharing the chunk
   * destination's index), opened on first use; null for a format 1 destination.
   */
  async treePacks(): Promise<PackedDestination | null> {
    if (!(this.destination instanceof PackedDestination)) return null;
    const chunks = this.destination;
    this.treeDestination ??= PackedDestination.open(this.dst, this.options.counters, { index: chunks.index, writer: TREE_PACKS, holds: 'trees' });
    return this.treeDestination;
  }

  /** True when this sync stored tree `hex` into the destination already. */
  storedTree(hex: string): boolean {
    return this.treesStored.has(hex);
  }

  /** Remembers that tree `hex` is stored into the destination. */
  rememberTree(hex: string): void {
    this.treesStored.add(hex);
    if (this.treesStored.size > REMEMBERED_TRANSLATIONS) this.treesStored.delete(this.treesStored.values().next().value as string);
  }

  /**
   * Stores what was taken so far and the segments naming it: the chunks' first, then the
   * trees' (a segment naming a tree is never written before the one naming its chunks).
   */
  async end(): Promise<void> {
    await this.destination.endDisk();
    await (await this.treeDestination)?.endDisk();
  }

  /** Stops after a failure: what is not stored yet is dropped. */
  async abandon(error: unknown): Promise<void> {
    await this.destination.abandon(error);
    await (await this.treeDestination?.catch(() => undefined))?.abandon(error);
  }

  /**
   * Source chunk `entry` (its index entry in the source) into the destination: resolves once
   * the destination has taken the chunk; the result's `entry` resolves with the chunk's entry
   * in the destination once it is stored and read back intact.
   */
  translate(entry: Buffer): Promise<StoredChunk> {
    const hex = entryId(entry).toString('hex');
    return this.translated.get(hex) ?? this.remember(hex, this.transfer(entry));
  }

  /**
   * Stores source chunk `entry` in the destination again although the destination names it
   * already, as chunk `expected`: its copy there is missing or damaged (heal-copies.ts). The
   * chunk is read from the source (opened and rehashed: nothing damaged is carried over), its
   * destination id must be `expected` (`E_VERIFY_FAILED` otherwise: the copy does not name
   * this chunk), and it is stored as a chunk the destination lacks: format 1 under the same
   * key (a put over a damaged object; under Object Lock a new version, as a backup heals),
   * format 2 in a new pack whose index segment gives its new place (the copy's pages keep the
   * old place, a hint that reads fall back from, moved-chunks.ts). Read back like every chunk
   * sent; later snapshots of this sync that need the chunk take this entry.
   */
  resend(entry: Buffer, expected: ObjectId): Promise<StoredChunk> {
    return this.remember(entryId(entry).toString('hex'), this.transfer(entry, expected));
  }

  /** Remembers the translation of source chunk `hex` (forgotten when it fails). */
  private remember(hex: string, result: Promise<StoredChunk>): Promise<StoredChunk> {
    const forget = () => {
      if (this.translated.get(hex) === result) this.translated.delete(hex);
    };
    result.then((stored) => stored.entry.catch(forget), forget);
    this.translated.set(hex, result);
    if (this.translated.size > REMEMBERED_TRANSLATIONS) this.translated.delete(this.translated.keys().next().value as string);
    return result;
  }

  /**
   * Moves chunk `stored` unless the destination holds it; with `resend`, moves it although the
   * destination names it (its copy there is broken), checking its destination id is `resend`.
   */
  private async transfer(stored: Buffer, resend?: ObjectId): Promise<StoredChunk> {
    if (this.options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'sync interrupted (run it again: what was sent is kept)');
    // Format 2 source: a chunk whose pack is known gone (a prune repacked it, §19.7) is taken at
    // its place now: in a pack adopted whole (whole-packs.ts), or read there without a failed read.
    const entry = this.src.config.version === 2 ? ((await MovedChunks.of(this.src).placeOf(stored)) ?? stored) : stored;
    const counters = this.options.counters;
    const present = (found: Buffer): StoredChunk => {
      counters.chunksPresent++;
      return { id: entryId(found), entry: Promise.resolve(found) };
    };
    const id = entryId(entry);
    if (this.options.sameKeys) {
      if (resend !== undefined) this.expect(resend, id);
      else {
        const adopted = this.wholePacks?.adoptedEntry(entry);
        if (adopted !== undefined) return { id, entry: Promise.resolve(adopted) };
        const found = await this.destination.find(id);
        if (found !== undefined) return present(found);
      }
      if (this.destination instanceof LooseDestination && this.src.config.version === 1) return this.destination.storeSealed(id, await this.source.sealed(id));
      return this.destination.storePlaintext(id, await this.source.plaintext(entry));
    }
    const plaintext = await this.source.plaintext(entry);
    const hash = await this.dst.pool.hash(plaintext);
    const dstId = hash.id ?? this.dst.codec.idOf(plaintext); // an all-zero chunk: stored by some writer, kept as is
    if (resend !== undefined) this.expect(resend, dstId);
    else {
      const found = await this.destination.find(dstId);
      if (found !== undefined) return present(found);
    }
    return this.destination.storePlaintext(dstId, plaintext);
  }

  /** A chunk sent again must be the one the copy names. */
  private expect(expected: ObjectId, id: ObjectId): void {
    if (id.equals(expected)) return;
    throw new CofferError('E_VERIFY_FAILED', `the copy in ${this.dst.location} names chunk ${expected.toString('hex')} where the source holds a chunk that would be ${id.toString('hex')} there: not sent again`, {
      subject: { repository: this.dst.location, object: expected.toString('hex') },
    });
  }
}
