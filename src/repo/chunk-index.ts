import { CofferError } from '../errors/index.js';
import { ObjectKind } from './format/envelope.js';
import { idPrefix, IndexSegment } from './format/index-segment.js';
import { idFromKey, SEGMENTS_PREFIX, segmentKey } from './layout.js';
import type { Repository } from './repository.js';

/** Bits of a chunk id's prefix kept in memory (format/index-segment.ts idPrefix): with the segment number, exactly a float64's 53. */
const PREFIX_BITS = 38;
const SEGMENT_BITS = 15;
/** At most 32,768 segments (a backup writes one per 16 GiB it adds; prune merges small ones, segment-merge.ts). */
export const MAX_SEGMENTS = 2 ** SEGMENT_BITS;
/**
 * Segments stored in at most this many bytes are opened on the main thread: AES-GCM and zstd
 * of 1 MiB (≈13,000 entries) take a millisecond or two, less than starting the codec threads
 * (≈0.06 CPU-s each; the pool starts all of them at its first task).
 */
const MAIN_THREAD_SEGMENT_BYTES = 1024 * 1024;
/** Decoded segments kept for lookups (≤ 5 MiB each): clones hit one segment at a time. */
const CACHED_SEGMENTS = 4;

/**
 * The global chunk index of a format 2 repository, for backups: "is this chunk stored, and
 * where?" for chunks not in the parent snapshot (clones, other VMs), without asking the
 * storage per chunk.
 *
 * In memory it is one sorted Float64Array of keys, **8 bytes per stored chunk**: the first
 * 38 bits of the chunk id times 2^15 plus the number of the segment holding the chunk (exact
 * in a float64, sorted natively). A lookup binary-searches the prefix, then reads the whole
 * entry from that segment (the few most recent segments stay decoded, ≤ 4 × 5 MiB). A prefix
 * shared by another chunk (about n / 2^38: 4·10^-5 at 10 million chunks) costs one segment
 * search, never a wrong answer: the full id is compared. 10 million chunks (2.5 TB of unique
 * blocks) take 80 MB, within the 256 MiB RSS target.
 *
 * Loading reads every segment once (`segments/`), so a backup's start costs reading 80 bytes
 * per stored chunk; it happens on the first lookup only, so a backup that finds everything in
 * its parent never loads it.
 */
export class ChunkIndex {
  private keys = new Float64Array(0);
  private segments: string[] = [];
  private readonly cache = new Map<number, Promise<IndexSegment>>();
  /** With `packs` at load: the packs the segments name (hex), the repository's live packs. */
  private packSet: Set<string> | undefined;

  private constructor(private readonly repo: Repository) {}

  /**
   * Reads every index segment of `repo` into the table. `packs`: also gather the packs they
   * name ({@link namesPack}; a hex id per pack in memory, and a little CPU per entry at load,
   * so only readers that need it ask).
   */
  static async load(repo: Repository, options: { packs?: boolean } = {}): Promise<ChunkIndex> {
    return ChunkIndex.loadNamed(repo, await segmentNames(repo), options);
  }

  /**
   * The index of the segments `repo` holds now, shared by every caller in this process while
   * they are the same: one file backup looks chunks up for its data, its trees and its
   * parent's trees, and loaded the whole index three times. The segments are listed (one
   * LIST) at each call; any change (a backup added one, a prune merged some) loads anew, so a
   * long-lived process never answers from segments that are gone. Not for `packs`.
   */
  static async current(repo: Repository): Promise<ChunkIndex> {
    const names = await segmentNames(repo);
    const key = names.join(',');
    const shared = currentIndexes.get(repo);
    if (shared !== undefined && shared.key === key) return shared.index;
    const index = ChunkIndex.loadNamed(repo, names);
    currentIndexes.set(repo, { key, index });
    index.catch(() => {
      if (currentIndexes.get(repo)?.index === index) currentIndexes.delete(repo);
    });
    return index;
  }

  private static async loadNamed(repo: Repository, names: string[], options: { packs?: boolean } = {}): Promise<ChunkIndex> {
    const index = new ChunkIndex(repo);
    if (names.length > MAX_SEGMENTS) {
      throw new CofferError('E_REPO_FORMAT_UNSUPPORTED', `${repo.location} has ${names.length} index segments, more than the ${MAX_SEGMENTS} this Coffer can hold; run 'coffer repair --index' to rewrite them`, { subject: { repository: repo.location } });
    }
    let keys = new Float64Array(1024);
    let count = 0;
    for (let number = 0; number < names.length; number++) {
      const segment = await index.readSegment(names[number] as string);
      if (count + segment.count > keys.length) {
        const grown = new Float64Array(Math.max(keys.length * 2, count + segment.count));
        grown.set(keys.subarray(0, count));
        keys = grown;
      }
      for (let i = 0; i < segment.count; i++) keys[count++] = segment.prefixAt(i) * 2 ** SEGMENT_BITS + number;
      if (options.packs === true) {
        index.packSet ??= new Set();
        for (let i = 0; i < segment.count; i++) index.packSet.add(segment.entryAt(i).toString('hex', 32, 64));
      }
    }
    if (options.packs === true) index.packSet ??= new Set();
    index.segments = names;
    index.keys = keys.slice(0, count).sort();
    return index;
  }

  /** Chunks known. */
  get size(): number {
    return this.keys.length;
  }

  /** Bytes the table takes in memory (8 per chunk). */
  get tableBytes(): number {
    return this.keys.byteLength;
  }

  /**
   * Whether some segment names pack `pack` (32 bytes): after a prune (§19.7) the packs the
   * segments name are the repository's packs, so a located entry whose pack they do not name
   * points at a pack a prune removed (or one written after this index was loaded). Undefined
   * when loaded without `packs`.
   */
  namesPack(pack: Uint8Array): boolean | undefined {
    return this.packSet?.has(Buffer.from(pack.buffer, pack.byteOffset, pack.byteLength).toString('hex'));
  }

  /** The located entry (80 bytes) of chunk `id`, or undefined when no segment names it. */
  async lookup(id: Buffer): Promise<Buffer | undefined> {
    return (await this.locations(id, 1))[0];
  }

  /**
   * Every located entry of chunk `id` (a chunk stored again after verify found it damaged has
   * two: the damaged place and the new one), in no particular order.
   */
  lookupAll(id: Buffer): Promise<Buffer[]> {
    return this.locations(id, Number.POSITIVE_INFINITY);
  }

  private async locations(id: Buffer, most: number): Promise<Buffer[]> {
    const base = idPrefix(id, 0) * 2 ** SEGMENT_BITS;
    let low = 0;
    let high = this.keys.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.keys[mid] as number) < base) low = mid + 1;
      else high = mid;
    }
    const found: Buffer[] = [];
    for (let i = low; i < this.keys.length && (this.keys[i] as number) < base + 2 ** SEGMENT_BITS && found.length < most; i++) {
      const number = (this.keys[i] as number) - base;
      const entry = (await this.segment(number)).find(id);
      if (entry !== undefined) found.push(Buffer.from(entry));
    }
    return found;
  }

  private segment(number: number): Promise<IndexSegment> {
    let segment = this.cache.get(number);
    if (segment === undefined) {
      segment = this.readSegment(this.segments[number] as string);
      segment.catch(() => this.cache.delete(number));
      this.cache.set(number, segment);
      while (this.cache.size > CACHED_SEGMENTS) this.cache.delete(this.cache.keys().next().value as number);
    }
    return segment;
  }

  /**
   * Opens a segment: one stored in at most {@link MAIN_THREAD_SEGMENT_BYTES} on this thread,
   * a larger one on the codec pool. A command that needs nothing else of the pool, such as a
   * file backup of an unchanged tree, then never starts its threads (a disk backup, which
   * always needs them, starts them while the key is derived).
   */
  private async readSegment(hex: string): Promise<IndexSegment> {
    const key = segmentKey(hex);
    const blob = await this.repo.backend.get(key);
    const id = Buffer.from(hex, 'hex');
    if (blob.length <= MAIN_THREAD_SEGMENT_BYTES) return IndexSegment.decode(this.repo.codec.open(blob, ObjectKind.indexSegment, key, id, { rehash: false }), key);
    const { plaintext } = await this.repo.pool.open(blob, { kind: ObjectKind.indexSegment, name: key, id, rehash: false });
    return IndexSegment.decode(plaintext as Buffer, key);
  }
}


/** The repository's segment ids (hex), sorted. */
export async function segmentNames(repo: Repository): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of repo.backend.list(SEGMENTS_PREFIX)) {
    const hex = idFromKey(entry.key);
    if (hex !== null) names.push(hex);
  }
  return names.sort();
}

/** {@link ChunkIndex.current}'s indexes, by repository, with the segment list they were loaded from. */
const currentIndexes = new WeakMap<Repository, { key: string; index: Promise<ChunkIndex> }>();

export const CHUNK_INDEX_LAYOUT = { PREFIX_BITS, SEGMENT_BITS } as const;
