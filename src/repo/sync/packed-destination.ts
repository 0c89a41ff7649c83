import { CofferError } from '../../errors/index.js';
import { ChunkIndex } from '../chunk-index.js';
import type { ObjectId } from '../codec.js';
import { ObjectKind } from '../format/envelope.js';
import { LOCATED_INDEX_ENTRY_SIZE } from '../format/index-page.js';
import { encodeSegment, MAX_SEGMENT_ENTRIES } from '../format/index-segment.js';
import { decodeLocatedEntry } from '../format/located-entry.js';
import type { PackTrailer } from '../format/pack.js';
import { packKey, segmentKey } from '../layout.js';
import { PackWriter } from '../pack-writer.js';
import type { Repository } from '../repository.js';
import type { DestinationChunks, StoredChunk } from './destination-chunks.js';
import { FrameReadBack } from './frame-read-back.js';
import { trailerEntries } from './pack-contents.js';
import type { SyncCounters } from './sync-report.js';

/**
 * A format 2 destination. Whether it holds a chunk: its chunk index (chunk-index.ts, loaded
 * once from its segments: 8 bytes per chunk), which also gives the chunk's located entry.
 *
 * Chunks it lacks are re-packed: staged into the destination's {@link PackWriter} (frames of
 * up to 8 blocks or 64 file chunks, packs of 8 MiB or 8,192 chunks, closed at the end of each disk like a backup's, with an index
 * segment naming them), and each chunk's entry is handed out only after its frame was read
 * back from the destination, opened with its key and its chunks rehashed to their ids
 * (frame-read-back.ts: one read and one worker task per frame; `E_VERIFY_FAILED` otherwise).
 *
 * Or a whole pack is adopted (whole-packs.ts: same keys, every chunk of the pack needed): its
 * bytes are stored under the same id, read back and checked against it (SHA-256), and the
 * source's located entries of its chunks hold in the destination unchanged; the segment
 * written at the end of the disk names them.
 */
export class PackedDestination implements DestinationChunks {
  readonly zeroEntry = Buffer.alloc(LOCATED_INDEX_ENTRY_SIZE);
  private readonly writer: PackWriter;
  private readonly readBack: FrameReadBack;
  /** Packs adopted whole (hex ids): their chunks' source entries hold here. */
  private readonly adopted = new Set<string>();
  private adoptedEntries: Buffer[] = [];
  private written = { bytes: 0, packs: 0 };

  private constructor(
    private readonly repo: Repository,
    /** The destination's chunk index as loaded when the sync began. */
    readonly index: ChunkIndex,
    private readonly counters: SyncCounters,
    writerOptions: ConstructorParameters<typeof PackWriter>[1],
    /** What it stores: chunks (counted as chunks sent) or file trees (their caller counts them; their bytes are tree bytes). */
    private readonly holds: 'chunks' | 'trees',
  ) {
    this.writer = new PackWriter(repo, writerOptions);
    this.readBack = new FrameReadBack(repo, (bytes) => (counters.bytesReadFromDestination += bytes));
  }

  /**
   * Loads the destination's chunk index, unless given one (a second destination into the same
   * repository, such as the packs of file trees, shares the first one's). `writer`: the pack
   * writer's frame and pack sizes (a backup's by default). `holds`: `trees` for the packs of
   * file trees (their bytes are counted as tree bytes).
   */
  static async open(repo: Repository, counters: SyncCounters, options: { index?: ChunkIndex; writer?: ConstructorParameters<typeof PackWriter>[1]; holds?: 'chunks' | 'trees' } = {}): Promise<PackedDestination> {
    return new PackedDestination(repo, options.index ?? (await ChunkIndex.load(repo)), counters, options.writer ?? {}, options.holds ?? 'chunks');
  }

  async find(id: ObjectId): Promise<Buffer | undefined> {
    return this.index.lookup(id);
  }

  /** The entry itself when `sourceEntry` (same keys, format 2) lies in a pack adopted whole. */
  adoptedEntry(sourceEntry: Buffer): Buffer | undefined {
    if (sourceEntry.length !== LOCATED_INDEX_ENTRY_SIZE) return undefined;
    return this.adopted.has(decodeLocatedEntry(sourceEntry, 'index entry').pack.toString('hex')) ? sourceEntry : undefined;
  }

  /** True when pack `hex` was adopted by this sync already. */
  hasAdopted(hex: string): boolean {
    return this.adopted.has(hex);
  }

  async storePlaintext(id: ObjectId, plaintext: Buffer): Promise<StoredChunk> {
    const { placed, ready } = this.writer.stage(id, plaintext);
    await ready;
    if (this.holds === 'chunks') this.counters.chunksSent++;
    const entry = placed.then((located) => this.readBack.check(located, id)); // read back from its frame, rehashed (frame-read-back.ts)
    entry.catch(() => undefined); // awaited by the page that names it
    return { id, entry };
  }

  /**
   * Stores pack `hex` as it is (its bytes, already checked against the id by the caller),
   * reads it back and checks its SHA-256 again; its chunks then need no copy.
   */
  async adoptPack(hex: string, bytes: Buffer, trailer: PackTrailer): Promise<void> {
    const key = packKey(hex);
    await this.repo.backend.put(key, bytes);
    const back = await this.repo.backend.get(key);
    this.counters.bytesReadFromDestination += back.length;
    if ((await this.repo.pool.sha256(back)).toString('hex') !== hex) {
      throw new CofferError('E_VERIFY_FAILED', `pack ${key} written to ${this.repo.location} does not read back intact`, { subject: { repository: this.repo.location, object: key } });
    }
    this.adopted.add(hex);
    this.adoptedEntries.push(...trailerEntries(Buffer.from(hex, 'hex'), trailer));
    this.counters.packsCopied++;
    this.counters.chunksSent += trailer.chunks.length;
    this.counters.chunkBytesSent += bytes.length;
    this.counters.bytesWritten += bytes.length;
  }

  async flush(): Promise<void> {
    await this.writer.flushPack();
    this.count();
  }

  async endDisk(): Promise<void> {
    await this.writer.finish();
    while (this.adoptedEntries.length > 0) await this.writeSegment(this.adoptedEntries.splice(0, MAX_SEGMENT_ENTRIES));
    this.count();
  }

  async abandon(error: unknown): Promise<void> {
    await this.writer.abandon(error);
  }

  /** One index segment naming `entries` (after the packs they name are stored). */
  private async writeSegment(entries: Buffer[]): Promise<void> {
    const plaintext = encodeSegment(entries);
    const id = this.repo.codec.idOf(plaintext);
    const sealed = await this.repo.pool.seal(plaintext, ObjectKind.indexSegment, id);
    await this.repo.backend.put(segmentKey(id.toString('hex')), sealed);
    this.counters.bytesWritten += sealed.length;
  }

  /** Adds what the pack writer stored since the last count (packs and its segments). */
  private count(): void {
    const stored = this.writer.stored;
    const bytes = stored.bytes - this.written.bytes;
    if (this.holds === 'chunks') this.counters.chunkBytesSent += bytes;
    else this.counters.treeBytesSent += bytes;
    this.counters.bytesWritten += bytes;
    this.counters.packsWritten += stored.packs - this.written.packs;
    this.written = { bytes: stored.bytes, packs: stored.packs };
  }
}
