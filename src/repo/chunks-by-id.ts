import { CofferError, isCofferError } from '../errors/index.js';
import { ChunkIndex } from './chunk-index.js';
import { ObjectKind } from './format/envelope.js';
import { IndexSegment } from './format/index-segment.js';
import { decodeLocatedEntry } from './format/located-entry.js';
import { FRAME_CACHE_BYTES, FrameReader, frameSlotBytes, MAIN_THREAD_FRAME_CACHE_BYTES, type PinnedChunk } from './frame-reader.js';
import { idFromKey, SEGMENTS_PREFIX, segmentKey } from './layout.js';
import type { Repository } from './repository.js';

/**
 * Reads chunks of a format 2 repository by id alone: the trees of file snapshots name their
 * chunks by id (docs/repository-format.md §19.10), so the places come from the repository's
 * index segments ({@link ChunkIndex}, loaded on the first read: 8 bytes per stored chunk in
 * memory, every segment read once), and a {@link FrameReader} reads the chunk from its frame
 * (checked against the frame's authenticated table; the last decoded frames kept, so small
 * files packed together cost one frame read). A chunk stored at several places (stored again
 * after verify found one damaged) is read from the first place that is intact; when none is,
 * the segments are read again once, in case a prune moved it.
 *
 * Throws `E_MISSING_OBJECT` when no segment names the chunk or every place is missing,
 * `E_CORRUPT_OBJECT` when every place is damaged.
 */
export class ChunksById {
  private index: Promise<ChunkIndex> | undefined;
  private readonly frames: FrameReader;

  /**
   * `framesOnMainThread`: see {@link FrameReader}'s `onMainThread`. `keptFrames`: decoded
   * frames kept (slots of shared memory, allocated as needed), for a reader that pins more
   * chunks at once than {@link FRAME_CACHE_BYTES} holds frames (a file restore).
   */
  constructor(
    private readonly repo: Repository,
    options: { framesOnMainThread?: boolean; keptFrames?: number } = {},
  ) {
    if (options.framesOnMainThread === true) this.frames = new FrameReader(repo, MAIN_THREAD_FRAME_CACHE_BYTES, true);
    else this.frames = new FrameReader(repo, options.keptFrames === undefined ? FRAME_CACHE_BYTES : options.keptFrames * frameSlotBytes(repo.config.blockSize));
  }

  /** Frames fetched and their stored bytes. */
  get fetched(): { frames: number; bytes: number } {
    return this.frames.fetched;
  }

  /**
   * The located entries (80 bytes) of chunk `id`: none when no index segment names it. A
   * reader kept open while backups add segments (the server) sees them: on a miss the segments
   * are listed again ({@link ChunkIndex.current}), and looked up in anew when they changed.
   */
  async locations(id: Buffer): Promise<Buffer[]> {
    const loaded = await this.loadIndex();
    const places = await loaded.lookupAll(id);
    if (places.length > 0) return places;
    this.index = undefined;
    const current = await this.loadIndex();
    return current === loaded ? places : current.lookupAll(id);
  }

  /**
   * A key that sorts chunks by where they are stored: pack, then the frame's offset in it,
   * then the chunk's offset in the frame (undefined when no segment names the chunk: its read
   * reports that). Reading chunks in this order decodes each frame once, whatever order the
   * files holding them come in.
   */
  async placeKey(id: Buffer): Promise<string | undefined> {
    const entry = (await this.locations(id))[0];
    if (entry === undefined) return undefined;
    const place = decodeLocatedEntry(entry, `chunk ${id.toString('hex')}`);
    return `${place.pack.toString('hex')}${hex8(place.frameOffset)}${hex8(place.chunkOffset)}`;
  }

  private loadIndex(): Promise<ChunkIndex> {
    if (this.index === undefined) {
      const loading = ChunkIndex.current(this.repo);
      loading.catch(() => (this.index = undefined));
      this.index = loading;
    }
    return this.index;
  }

  /** The chunk's plaintext. */
  async read(id: Buffer): Promise<Buffer> {
    return this.fromFirstIntact(id, async (entry, length) => {
      const into = Buffer.alloc(length);
      await this.frames.read(entry, into);
      return into;
    });
  }

  /** Reads the chunk into the start of `into` (large enough) and answers its length. */
  async readInto(id: Buffer, into: Uint8Array): Promise<number> {
    return this.fromFirstIntact(id, async (entry, length) => {
      if (length > into.length) throw new CofferError('E_CORRUPT_OBJECT', `chunk ${id.toString('hex')} holds ${length} bytes, more than a file chunk can`, { subject: { object: id.toString('hex') } });
      await this.frames.read(entry, into.subarray(0, length));
      return length;
    });
  }

  /**
   * The chunk as a view into its decoded frame, without a copy, until `release()` (see
   * {@link FrameReader.pin}: the frame's slot is held meanwhile; a reader that pins more
   * frames at once than its budget holds opens the others into memory of their own).
   */
  async pin(id: Buffer): Promise<PinnedChunk> {
    return this.fromFirstIntact(id, (entry, length) => this.frames.pin(entry, length));
  }

  /**
   * `read` at the chunk's places in turn, the first that is intact; when all fail, the
   * segments are read again once (a prune may have moved the chunk since the table was
   * loaded) and the new places are tried.
   */
  private async fromFirstIntact<T>(id: Buffer, read: (entry: Buffer, length: number) => Promise<T>): Promise<T> {
    const hex = id.toString('hex');
    const places = await this.locations(id);
    if (places.length === 0) throw new CofferError('E_MISSING_OBJECT', `chunk ${hex} is missing: no index segment names it`, { subject: { object: hex } });
    const tried = await this.firstIntact(hex, places, read);
    if (!(tried instanceof CofferError)) return tried;
    this.index = undefined;
    const moved = (await this.locations(id)).filter((entry) => !places.some((old) => old.equals(entry)));
    if (moved.length === 0) throw tried;
    const again = await this.firstIntact(hex, moved, read);
    if (again instanceof CofferError) throw again;
    return again;
  }

  /** `read` at the first of `places` that is intact, or the last failure. */
  private async firstIntact<T>(hex: string, places: Buffer[], read: (entry: Buffer, length: number) => Promise<T>): Promise<T | CofferError> {
    let failure: CofferError | undefined;
    for (const entry of places) {
      try {
        return await read(entry, decodeLocatedEntry(entry, `chunk ${hex}`).chunkLength);
      } catch (error) {
        if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
        failure = error;
      }
    }
    return failure as CofferError;
  }
}

/**
 * The places (located entries) of many chunks at once, from one pass over every index
 * segment: for a caller that needs most of a repository's chunks (verify), where a lookup per
 * chunk would decode the same segments again and again. Memory: the entries of `wanted` only.
 * Ids no segment names are absent from the answer.
 */
export async function locateChunks(repo: Repository, wanted: ReadonlySet<string>): Promise<Map<string, Buffer[]>> {
  const found = new Map<string, Buffer[]>();
  if (wanted.size === 0) return found;
  for await (const listed of repo.backend.list(SEGMENTS_PREFIX)) {
    const hex = idFromKey(listed.key);
    if (hex === null) continue;
    const key = segmentKey(hex);
    const { plaintext } = await repo.pool.open(await repo.backend.get(key), { kind: ObjectKind.indexSegment, name: key, id: Buffer.from(hex, 'hex'), rehash: false });
    const segment = IndexSegment.decode(plaintext as Buffer, key);
    for (let i = 0; i < segment.count; i++) {
      const id = segment.idAt(i).toString('hex');
      if (!wanted.has(id)) continue;
      const places = found.get(id) ?? [];
      places.push(Buffer.from(segment.entryAt(i)));
      found.set(id, places);
    }
  }
  return found;
}

/** A uint32 as 8 hex digits: keys that sort as the numbers do. */
function hex8(value: number): string {
  return value.toString(16).padStart(8, '0');
}
