import { CofferError, isCofferError } from '../../errors/index.js';
import type { ObjectId } from '../codec.js';
import { ObjectKind } from '../format/envelope.js';
import { ZERO_ENTRY } from '../format/index-page.js';
import { IdPrefixSet } from '../id-prefix-set.js';
import { CHUNKS_PREFIX, chunkKey, idFromKey } from '../layout.js';
import type { Repository } from '../repository.js';
import type { DestinationChunks, StoredChunk } from './destination-chunks.js';
import type { SyncCounters } from './sync-report.js';

/**
 * A format 1 destination: each chunk is one object `chunks/<2>/<64>`, its entry its id.
 * Whether the destination has a chunk: the prefixes of its chunks (listed once, 8 bytes each)
 * say "no" for certain; a "yes" is confirmed with `has`, since two ids may share a prefix.
 * Every chunk written is read back and opened with the destination's key, rehashed, before
 * anything names it (`E_VERIFY_FAILED` otherwise).
 */
export class LooseDestination implements DestinationChunks {
  readonly zeroEntry = ZERO_ENTRY;

  private constructor(
    private readonly repo: Repository,
    private readonly present: IdPrefixSet,
    private readonly counters: SyncCounters,
  ) {}

  /** Lists the destination's chunks once. */
  static async open(repo: Repository, counters: SyncCounters): Promise<LooseDestination> {
    const present = new IdPrefixSet();
    for await (const entry of repo.backend.list(CHUNKS_PREFIX)) {
      const id = idFromKey(entry.key);
      if (id !== null) present.add(id);
    }
    present.seal();
    return new LooseDestination(repo, present, counters);
  }

  /**
   * Whether the listing taken at the start holds chunk `id` (by its 8-byte prefix: "no" is
   * certain, "yes" wrong for about n / 2^64 of the ids asked, 5·10^-13 at 10 million chunks).
   * What the check of the copies already there asks (heal-copies.ts): one listing, no request per chunk.
   */
  listed(id: ObjectId): boolean {
    return this.present.has(id);
  }

  async find(id: ObjectId): Promise<Buffer | undefined> {
    return this.present.has(id) && (await this.repo.hasChunk(id)) ? id : undefined;
  }

  async storePlaintext(id: ObjectId, plaintext: Buffer): Promise<StoredChunk> {
    return this.storeSealed(id, await this.repo.pool.sealGathered(plaintext, ObjectKind.chunk, id)); // many small chunks: one worker task for those of a turn
  }

  /** Puts a sealed chunk, reads it back and opens it (rehashed) with the destination's key. */
  async storeSealed(id: ObjectId, sealed: Buffer): Promise<StoredChunk> {
    const counters = this.counters;
    await this.repo.putChunk(id, sealed);
    counters.chunksSent++;
    counters.chunkBytesSent += sealed.length;
    counters.bytesWritten += sealed.length;
    const hex = id.toString('hex');
    const back = await this.repo.getChunkBlob(id);
    counters.bytesReadFromDestination += back.length;
    try {
      await this.repo.pool.checkGathered({ blob: back, kind: ObjectKind.chunk, name: chunkKey(hex), id });
    } catch (error) {
      if (!isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
      throw new CofferError('E_VERIFY_FAILED', `chunk ${hex} written to ${this.repo.location} does not read back intact: ${error.message}`, {
        subject: { repository: this.repo.location, object: chunkKey(hex) },
        cause: error,
      });
    }
    return { id, entry: Promise.resolve(id) };
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  endDisk(): Promise<void> {
    return Promise.resolve();
  }

  abandon(): Promise<void> {
    return Promise.resolve();
  }
}
