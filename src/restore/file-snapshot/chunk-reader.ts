import { ObjectKind, type Repository } from '../../repo/index.js';

/**
 * Reads chunks of a file snapshot by id (64 hex): fetched from the backend, opened on the
 * worker pool (authenticated, decompressed; rehashed in an unencrypted repository), the few
 * most recent kept (a `cat` in pieces reads one chunk several times). Throws
 * `E_MISSING_OBJECT` / `E_CORRUPT_OBJECT`.
 */
export class ChunkReader {
  private readonly recent = new Map<string, Promise<Buffer>>();
  /** Chunks fetched and their stored bytes. */
  readonly fetched = { chunks: 0, bytes: 0 };

  constructor(
    private readonly repo: Repository,
    private readonly keep = 4,
  ) {}

  read(hex: string): Promise<Buffer> {
    const cached = this.recent.get(hex);
    if (cached !== undefined) return cached;
    const work = this.fetch(hex);
    this.recent.set(hex, work);
    work.catch(() => this.recent.delete(hex));
    if (this.recent.size > this.keep) this.recent.delete(this.recent.keys().next().value as string);
    return work;
  }

  /**
   * Reads a chunk into `into` (shared memory, large enough) and answers its length, without
   * keeping it: the opens asked for in one turn of the event loop leave together, one worker
   * task per thread (CodecPool.open's batching), so a restore writing many small files pays
   * one round trip per batch, not per chunk.
   */
  async readInto(hex: string, into: Uint8Array): Promise<number> {
    const id = Buffer.from(hex, 'hex');
    const blob = await this.repo.getChunkBlob(id);
    this.fetched.chunks++;
    this.fetched.bytes += blob.length;
    return (await this.repo.pool.open(blob, { kind: ObjectKind.chunk, name: `chunks/${hex}`, id, rehash: false, into })).length;
  }

  private async fetch(hex: string): Promise<Buffer> {
    const id = Buffer.from(hex, 'hex');
    const blob = await this.repo.getChunkBlob(id);
    this.fetched.chunks++;
    this.fetched.bytes += blob.length;
    const { plaintext } = await this.repo.pool.open(blob, { kind: ObjectKind.chunk, name: `chunks/${hex}`, id, rehash: false });
    return plaintext as Buffer;
  }
}
