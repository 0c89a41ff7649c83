import { ChunksById, ObjectKind, type Repository } from '../../repo/index.js';

/**
 * Reads chunks of a file snapshot by id (64 hex). Format 1: the chunk's object fetched from
 * the backend, opened on the worker pool (authenticated, decompressed; rehashed in an
 * unencrypted repository). Format 2: the chunk's place looked up in the index segments and
 * read from its frame ({@link ChunksById}: a frame decoded once for the small files packed in
 * it). The few most recent chunks are kept (a `cat` in pieces reads one chunk several times).
 * Throws `E_MISSING_OBJECT` / `E_CORRUPT_OBJECT`.
 */
export class ChunkReader {
  private readonly recent = new Map<string, Promise<Buffer>>();
  private readonly packed: ChunksById | undefined;
  private readonly objects = { chunks: 0, bytes: 0 };

  /** `keptFrames` (format 2): decoded frames kept, at least as many as chunks pinned at once (see ChunksById). */
  constructor(
    private readonly repo: Repository,
    private readonly keep = 4,
    options: { keptFrames?: number } = {},
  ) {
    this.packed = repo.config.version === 2 ? new ChunksById(repo, options.keptFrames === undefined ? {} : { keptFrames: options.keptFrames }) : undefined;
  }

  /** Whether {@link pin} answers without a copy (format 2: chunks are read out of decoded frames). */
  get pins(): boolean {
    return this.packed !== undefined;
  }

  /**
   * Format 2: the chunk as a view into its decoded frame, held until `release()`; format 1:
   * the chunk read into memory of its own (nothing to release).
   */
  async pin(hex: string): Promise<{ data: Uint8Array; release: () => void }> {
    if (this.packed === undefined) return { data: await this.fetch(hex), release: () => undefined };
    const pinned = await this.packed.pin(Buffer.from(hex, 'hex'));
    return { data: pinned.view, release: pinned.release };
  }

  /** Objects (format 1: chunks; format 2: frames) fetched and their stored bytes. */
  get fetched(): { chunks: number; bytes: number } {
    return this.packed === undefined ? this.objects : { chunks: this.packed.fetched.frames, bytes: this.packed.fetched.bytes };
  }

  /**
   * A key ordering chunks by where they are stored (format 2: pack, frame, offset; see
   * ChunksById.placeKey), for reading many in an order that decodes each frame once.
   * Undefined in format 1 (every chunk is an object of its own: no order is cheaper) and for
   * a chunk no index names (its read reports it).
   */
  async placeKey(hex: string): Promise<string | undefined> {
    return this.packed?.placeKey(Buffer.from(hex, 'hex'));
  }

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
   * keeping it: in format 1 the opens asked for in one turn of the event loop leave together,
   * one worker task per thread (CodecPool.open's batching), so a restore writing many small
   * files pays one round trip per batch, not per chunk; in format 2 the chunks of one frame
   * share one read and one open.
   */
  async readInto(hex: string, into: Uint8Array): Promise<number> {
    const id = Buffer.from(hex, 'hex');
    if (this.packed !== undefined) return this.packed.readInto(id, into);
    const blob = await this.repo.getChunkBlob(id);
    this.objects.chunks++;
    this.objects.bytes += blob.length;
    return (await this.repo.pool.open(blob, { kind: ObjectKind.chunk, name: `chunks/${hex}`, id, rehash: false, into })).length;
  }

  private async fetch(hex: string): Promise<Buffer> {
    const id = Buffer.from(hex, 'hex');
    if (this.packed !== undefined) return this.packed.read(id);
    const blob = await this.repo.getChunkBlob(id);
    this.objects.chunks++;
    this.objects.bytes += blob.length;
    const { plaintext } = await this.repo.pool.open(blob, { kind: ObjectKind.chunk, name: `chunks/${hex}`, id, rehash: false });
    return plaintext as Buffer;
  }
}
