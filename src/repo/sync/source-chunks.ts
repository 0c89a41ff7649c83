import type { ObjectId } from '../codec.js';
import { ObjectKind } from '../format/envelope.js';
import { decodeLocatedEntry, entryId } from '../format/located-entry.js';
import { FrameReader } from '../frame-reader.js';
import { MovedChunks } from '../moved-chunks.js';
import { chunkKey } from '../layout.js';
import type { Repository } from '../repository.js';
import type { SyncCounters } from './sync-report.js';

/**
 * Reads the chunks of a sync's source, whatever its format, by their index entries: a chunk
 * object (format 1: fetched and opened, rehashed) or a chunk in a pack's frame (format 2: one
 * ranged read of the frame, opened on a worker and checked against the frame's table; the
 * last frames stay decoded, so a frame's up to 8 chunks cost one read; a chunk a prune moved
 * is read at its new place, moved-chunks.ts). Counts what it reads.
 */
export class SourceChunks {
  private readonly frames: FrameReader | undefined;
  private framesCounted = 0;

  constructor(
    private readonly repo: Repository,
    private readonly counters: SyncCounters,
  ) {
    this.frames = repo.config.version === 2 ? new FrameReader(repo) : undefined;
  }

  /** The plaintext of the chunk of `entry` (32-byte id in format 1, 80-byte located entry in format 2). */
  async plaintext(entry: Buffer): Promise<Buffer> {
    this.counters.chunksRead++;
    if (this.frames === undefined) {
      const id = entryId(entry);
      const blob = await this.sealedBlob(id);
      const { plaintext } = await this.repo.pool.open(blob, { kind: ObjectKind.chunk, name: this.name(id), id, rehash: true });
      if (plaintext === null) throw new Error('codec pool returned no plaintext');
      return plaintext;
    }
    const location = decodeLocatedEntry(entry, `an index entry of ${this.repo.location}`);
    const out = Buffer.allocUnsafe(location.chunkLength);
    const frames = this.frames;
    await MovedChunks.of(this.repo).read(entry, (place) => frames.read(place, out)); // a prune may have moved it

    // Counted from the reader's total: reads run concurrently, a delta per call would count others' frames.
    this.counters.bytesRead += this.frames.fetched.bytes - this.framesCounted;
    this.framesCounted = this.frames.fetched.bytes;
    return out;
  }

  /**
   * Format 1 only: the stored bytes of chunk `id`, checked (opened and rehashed with the
   * source's key) so that nothing damaged is carried over as it is.
   */
  async sealed(id: ObjectId): Promise<Buffer> {
    this.counters.chunksRead++;
    const blob = await this.sealedBlob(id);
    // On a copy: the pool may take the buffer it is given.
    await this.repo.pool.open(Buffer.from(blob), { kind: ObjectKind.chunk, name: this.name(id), id, rehash: true, into: 'discard' });
    return blob;
  }

  private async sealedBlob(id: ObjectId): Promise<Buffer> {
    const blob = await this.repo.getChunkBlob(id);
    this.counters.bytesRead += blob.length;
    return blob;
  }

  private name(id: ObjectId): string {
    return `${chunkKey(id.toString('hex'))} of ${this.repo.location}`;
  }
}
