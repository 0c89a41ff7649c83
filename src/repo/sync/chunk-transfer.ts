import { randomBytes } from 'node:crypto';
import { CofferError, isCofferError } from '../../errors/index.js';
import type { ObjectId } from '../codec.js';
import { ObjectKind } from '../format/envelope.js';
import type { IdPrefixSet } from '../id-prefix-set.js';
import { chunkKey } from '../layout.js';
import type { Repository } from '../repository.js';
import type { SyncCounters } from './sync-report.js';

/**
 * Source chunk ids translated in this run, remembered so a chunk met again (a block repeated
 * on a disk, a chunk shared by two VMs) is not read twice: 64 Ki entries (~10 MB), that is
 * 16 GiB of distinct data at the default block size; the oldest are forgotten beyond that.
 */
const REMEMBERED_TRANSLATIONS = 65_536;

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
 * it, and answers the chunk's id in the destination.
 *
 * - Same keys: the id is the same; the stored bytes are checked (opened and rehashed with the
 *   source's key) and copied as they are.
 * - Different keys: the chunk is opened with the source's key (rehashed: nothing damaged is
 *   carried over), its destination id computed (HMAC under the destination's id key), and,
 *   when the destination lacks it, sealed with the destination's key and sent.
 *
 * Whether the destination has a chunk: `present` (the prefixes of the destination's chunks,
 * listed once at the start) says "no" for certain; a "yes" is confirmed with `has`, since two
 * ids may share a prefix. Every chunk written is read back and opened with the destination's
 * key, rehashed, before anything names it (E_VERIFY_FAILED otherwise).
 */
export class ChunkTransfer {
  private readonly translated = new Map<string, Promise<ObjectId>>();

  constructor(
    private readonly src: Repository,
    private readonly dst: Repository,
    private readonly options: { sameKeys: boolean; present: IdPrefixSet; counters: SyncCounters; signal?: AbortSignal | undefined },
  ) {}

  /** Whether both repositories share their keys (ids are the same on both sides). */
  get sameKeys(): boolean {
    return this.options.sameKeys;
  }

  /** The destination id of source chunk `id`, once the destination holds the chunk. */
  translate(id: ObjectId): Promise<ObjectId> {
    const hex = id.toString('hex');
    let result = this.translated.get(hex);
    if (result === undefined) {
      result = this.transfer(id, hex);
      result.catch(() => this.translated.delete(hex));
      this.translated.set(hex, result);
      if (this.translated.size > REMEMBERED_TRANSLATIONS) this.translated.delete(this.translated.keys().next().value as string);
    }
    return result;
  }

  private async transfer(id: ObjectId, hex: string): Promise<ObjectId> {
    if (this.options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'sync interrupted (run it again: what was sent is kept)');
    const counters = this.options.counters;
    if (this.options.sameKeys && (await this.destinationHas(id))) {
      counters.chunksPresent++;
      return id;
    }
    const blob = await this.src.getChunkBlob(id);
    counters.chunksRead++;
    counters.bytesRead += blob.length;
    const name = `${chunkKey(hex)} of ${this.src.location}`;
    if (this.options.sameKeys) {
      // Check before carrying: open a copy (the pool may take the buffer it is given).
      await this.src.pool.open(Buffer.from(blob), { kind: ObjectKind.chunk, name, id, rehash: true, into: 'discard' });
      await this.send(id, blob);
      return id;
    }
    const { plaintext } = await this.src.pool.open(blob, { kind: ObjectKind.chunk, name, id, rehash: true });
    if (plaintext === null) throw new Error('codec pool returned no plaintext');
    const hash = await this.dst.pool.hash(plaintext);
    const dstId = hash.id ?? this.dst.codec.idOf(plaintext); // an all-zero chunk: stored by some writer, kept as is
    if (await this.destinationHas(dstId)) {
      counters.chunksPresent++;
      return dstId;
    }
    await this.send(dstId, await this.dst.pool.seal(plaintext, ObjectKind.chunk, dstId));
    return dstId;
  }

  private async destinationHas(id: ObjectId): Promise<boolean> {
    return this.options.present.has(id) && (await this.dst.hasChunk(id));
  }

  /** Puts a sealed chunk, reads it back and opens it (rehashed) with the destination's key. */
  private async send(id: ObjectId, sealed: Buffer): Promise<void> {
    const counters = this.options.counters;
    await this.dst.putChunk(id, sealed);
    counters.chunksSent++;
    counters.chunkBytesSent += sealed.length;
    counters.bytesWritten += sealed.length;
    const hex = id.toString('hex');
    const back = await this.dst.getChunkBlob(id);
    counters.bytesReadFromDestination += back.length;
    try {
      await this.dst.pool.open(back, { kind: ObjectKind.chunk, name: chunkKey(hex), id, rehash: true, into: 'discard' });
    } catch (error) {
      if (!isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
      throw new CofferError('E_VERIFY_FAILED', `chunk ${hex} written to ${this.dst.location} does not read back intact: ${error.message}`, {
        subject: { repository: this.dst.location, object: chunkKey(hex) },
        cause: error,
      });
    }
  }
}
