import { ObjectKind, type Repository } from '../../repo/index.js';

/**
 * Reads chunks of a file snapshot by id (64 hex): fetched from the backend, opened on the
 * worker pool (authenticated, decompressed; rehashed in an unencrypted repository), the few
 * most recent kept (a `cat` in pieces reads one chunk several times). Throws
 * `E_MISSING_OBJECT` / `E_CORRUPT_OBJECT`.
 *
 * Given the chunk's length (a file's piece says it), the plaintext is opened into shared
 * memory, and the opens asked for in one turn of the event loop leave together, one worker
 * task per thread (CodecPool.open's batching): a restore writing many small files at once
 * pays one round trip per batch, not per chunk.
 */
export class ChunkReader {
  private readonly recent = new Map<string, Promise<Buffer>>();
  /** Chunks fetched and their stored bytes. */
  readonly fetched = { chunks: 0, bytes: 0 };

  constructor(
    private readonly repo: Repository,
    private readonly keep = 4,
  ) {}

  read(hex: string, length?: number): Promise<Buffer> {
    const cached = this.recent.get(hex);
    if (cached !== undefined) return cached;
    const work = this.fetch(hex, length);
    this.recent.set(hex, work);
    work.catch(() => this.recent.delete(hex));
    if (this.recent.size > this.keep) this.recent.delete(this.recent.keys().next().value as string);
    return work;
  }

  private async fetch(hex: string, length: number | undefined): Promise<Buffer> {
    const id = Buffer.from(hex, 'hex');
    const blob = await this.repo.getChunkBlob(id);
    this.fetched.chunks++;
    this.fetched.bytes += blob.length;
    if (length !== undefined && length > 0) {
      const into = new Uint8Array(new SharedArrayBuffer(length));
      const opened = await this.repo.pool.open(blob, { kind: ObjectKind.chunk, name: `chunks/${hex}`, id, rehash: false, into });
      return Buffer.from(into.buffer, 0, opened.length);
    }
    const { plaintext } = await this.repo.pool.open(blob, { kind: ObjectKind.chunk, name: `chunks/${hex}`, id, rehash: false });
    return plaintext as Buffer;
  }
}
