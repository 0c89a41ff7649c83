import { CofferError } from '../errors/index.js';
import { ObjectKind } from './format/envelope.js';
import { encodeLocatedEntry } from './format/located-entry.js';
import { encodeSegment, MAX_SEGMENT_ENTRIES } from './format/index-segment.js';
import { encodeTrailer, FRAME_HEADER_SIZE, FRAME_TABLE_ENTRY_SIZE, MAX_CHUNKS_PER_FRAME, packFooter, packHeader, PACK_FOOTER_SIZE, PACK_HEADER_SIZE, UNADDRESSED_ID } from './format/pack.js';
import { packKey, segmentKey } from './layout.js';
import type { Repository } from './repository.js';

/**
 * Defaults of the pack writer, each with its reason.
 * - 8 blocks / 2 MiB per frame: zstd over 2 MiB stores 6.7 % less than over 256 KiB (bench
 *   disk, level 3, docs/decisions/2026-11-26-packs-and-gc.md), and a random read decodes at
 *   most 2 MiB.
 * - 16 MiB packs: a 1 TB full is ~62,000 objects instead of 4 million (S3 gateway CPU per
 *   object, PUT cost, inodes). The design said ~32 MiB; with 32 the bench's 4 GiB full peaked
 *   at 274-283 MiB RSS (the pack filling plus the one uploading), over the 256 MiB target.
 * - 1 pack uploading while the next fills: the storage stays busy, and each more would cost
 *   18 MiB (the bench's 4 GiB full peaked at 325 MiB RSS with 2 and a copy per pack, over the
 *   256 MiB target). Remote stores may want more (not measured yet).
 */
export const PACK_DEFAULTS = { blocksPerFrame: 8, framePlaintext: 2 * 1024 * 1024, packSize: 16 * 1024 * 1024, uploads: 1 } as const;

interface StagedChunk {
  id: Buffer;
  data: Buffer;
  placed: Deferred<Buffer>;
}

interface FrameInPack {
  offset: number;
  length: number;
  chunks: { id: Buffer; offset: number; length: number; placed: Deferred<Buffer> }[];
}

/**
 * Writes the new chunks of a backup into packs (format 2, format/pack.ts): chunks are staged
 * into frames of up to 8 (≤ 2 MiB, one disk's blocks in the order they come), each frame is
 * compressed and encrypted on the codec workers, frames are appended to the pack being
 * filled, and a pack is stored with one PUT once it reaches ~32 MiB or the backup ends (its
 * id is the SHA-256 of its bytes, computed on a worker). A chunk's located entry
 * (format/located-entry.ts) is known once its pack is stored: {@link add} hands back a
 * promise of it. What the backup added is written as index segments (format/index-segment.ts)
 * after the packs they name, at most 65,536 entries each.
 *
 * Memory: the frame being staged (≤ 2 MiB), frames sealing (`threads × 2`), the pack being
 * filled (one 18 MiB shared buffer the sealed frames are copied into) and
 * {@link PACK_DEFAULTS.uploads} pack uploading, plus 80 bytes
 * per new chunk until a segment is written (≤ 5 MiB). Not for concurrent backups in one
 * process sharing one writer: one writer per backup run.
 */
export class PackWriter {
  private staged: StagedChunk[] = [];
  private stagedBytes = 0;
  private frames: FrameInPack[] = [];
  /** The pack being filled, in shared memory (hashed on a worker without a copy); allocated on its first frame. */
  private current: Buffer | undefined;
  private packBytes = PACK_HEADER_SIZE;
  /**
   * Pack buffers whose upload finished, reused for the next packs: shared memory is freed
   * late by the garbage collector, and a new 18 MiB buffer per pack raised the peak RSS.
   */
  private readonly spare: Buffer[] = [];
  private readonly sealing = new Set<Promise<void>>();
  private readonly uploading = new Set<Promise<void>>();
  private segmentEntries: Buffer[] = [];
  private failure: { error: unknown } | undefined;
  private readonly maxSealing: number;
  /** What this writer stored: packs, segments, and their bytes (sealed frames, trailers, segments). */
  readonly stored = { packs: 0, segments: 0, bytes: 0, framesSealedBytes: 0 };

  constructor(
    private readonly repo: Repository,
    private readonly options: { packSize?: number; uploads?: number; blocksPerFrame?: number } = {},
  ) {
    if (repo.config.version !== 2) throw new Error('packs are written only in format 2 repositories');
    this.maxSealing = repo.pool.threads * 2;
  }

  /**
   * Stages a new chunk (its bytes are copied: `data` is free when this resolves, which may
   * wait for frames and packs in flight to drain). The returned `placed` resolves with the
   * chunk's 80-byte located entry once its pack is stored, or rejects if storing fails.
   */
  async add(id: Buffer, data: Uint8Array): Promise<{ placed: Promise<Buffer> }> {
    const { placed, ready } = this.stage(id, data);
    await ready;
    return { placed };
  }

  /**
   * {@link add} in two steps: the chunk is staged (copied) at once, `placed` is its entry to
   * come, and `ready` resolves when the writer can take more (backpressure).
   */
  stage(id: Buffer, data: Uint8Array): { placed: Promise<Buffer>; ready: Promise<void> } {
    this.throwIfFailed();
    const placed = deferred<Buffer>();
    this.staged.push({ id: Buffer.from(id), data: Buffer.from(data), placed });
    this.stagedBytes += data.length;
    const perFrame = Math.min(this.options.blocksPerFrame ?? PACK_DEFAULTS.blocksPerFrame, MAX_CHUNKS_PER_FRAME);
    const full = this.staged.length >= perFrame || this.stagedBytes >= PACK_DEFAULTS.framePlaintext;
    return { placed: placed.promise, ready: full ? this.sealStaged() : Promise.resolve() };
  }

  /**
   * Seals what is staged as a frame (the end of a disk: frames never mix disks) and waits
   * until every frame is sealed and appended (not uploaded).
   */
  async flushFrame(): Promise<void> {
    if (this.staged.length > 0) await this.sealStaged();
    while (this.sealing.size > 0) await Promise.all(this.sealing);
    this.throwIfFailed();
  }

  /**
   * Seals what is staged and stores the pack being filled (the end of a disk), waiting for
   * every upload: afterwards every chunk added so far has its located entry.
   */
  async flushPack(): Promise<void> {
    await this.flushFrame();
    if (this.frames.length > 0) await this.closePack();
    while (this.uploading.size > 0) await Promise.all(this.uploading);
    this.throwIfFailed();
  }

  /** Stores the last pack and the index segment of what was added; waits for every upload. */
  async finish(): Promise<void> {
    await this.flushPack();
    if (this.segmentEntries.length > 0) await this.writeSegment();
  }

  /** Stops: what is staged or sealing is dropped (the backup failed). */
  async abandon(error: unknown): Promise<void> {
    this.failure ??= { error };
    for (const chunk of this.staged) chunk.placed.reject(error);
    this.staged = [];
    await Promise.allSettled([...this.sealing, ...this.uploading]);
  }

  private async sealStaged(): Promise<void> {
    const chunks = this.staged;
    this.staged = [];
    this.stagedBytes = 0;
    while (this.sealing.size >= this.maxSealing) {
      await Promise.race(this.sealing);
      this.throwIfFailed();
    }
    const total = chunks.reduce((sum, c) => sum + c.data.length, 0);
    const data = Buffer.from(new ArrayBuffer(total));
    const ids = Buffer.alloc(chunks.length * 32);
    let at = 0;
    chunks.forEach((chunk, i) => {
      data.set(chunk.data, at);
      at += chunk.data.length;
      chunk.id.copy(ids, i * 32);
    });
    const lengths = chunks.map((c) => c.data.length);
    const task: Promise<void> = this.repo.pool
      .sealFrame(data, lengths, ids)
      .then((sealed) => this.append(sealed, chunks))
      .catch((error: unknown) => {
        this.failure ??= { error };
        for (const chunk of chunks) chunk.placed.reject(error);
      })
      .finally(() => this.sealing.delete(task));
    this.sealing.add(task);
  }

  /** Appends a sealed frame to the pack being filled; closes the pack when full. */
  private async append(sealed: Buffer, chunks: StagedChunk[]): Promise<void> {
    const tableEnd = FRAME_HEADER_SIZE + FRAME_TABLE_ENTRY_SIZE * chunks.length;
    let offset = tableEnd;
    this.frames.push({
      offset: this.packBytes,
      length: sealed.length,
      chunks: chunks.map((c) => {
        const entry = { id: c.id, offset, length: c.data.length, placed: c.placed };
        offset += c.data.length;
        return entry;
      }),
    });
    this.current ??= this.spare.pop();
    this.current = ensureCapacity(this.current, this.packBytes, sealed.length, this.packSize);
    this.current.set(sealed, this.packBytes);
    this.packBytes += sealed.length;
    this.stored.framesSealedBytes += sealed.length;
    if (this.packBytes >= this.packSize) await this.closePack();
  }

  /** Builds the pack (header, frames, trailer, footer), hashes it on a worker and starts its PUT. */
  private async closePack(): Promise<void> {
    const frames = this.frames;
    const filled = this.packBytes;
    let pack = this.current as Buffer;
    this.frames = [];
    this.current = undefined;
    this.packBytes = PACK_HEADER_SIZE;
    const trailerPlain = encodeTrailer({
      frames: frames.map((f) => ({ offset: f.offset, length: f.length })),
      chunks: frames.flatMap((f, frame) => f.chunks.map((c) => ({ id: c.id, frame, offset: c.offset, length: c.length }))),
    });
    const trailer = this.repo.codec.seal(trailerPlain, ObjectKind.packTrailer, UNADDRESSED_ID);
    const size = filled + trailer.length + PACK_FOOTER_SIZE;
    const whole = ensureCapacity(pack, filled, trailer.length + PACK_FOOTER_SIZE, this.packSize);
    pack = whole.subarray(0, size);
    packHeader().copy(pack, 0);
    trailer.copy(pack, filled);
    packFooter(trailer.length).copy(pack, filled + trailer.length);
    const packId = await this.repo.pool.sha256(pack);
    // At most `uploads` packs go up at once: the frames sealing meanwhile wait here, and the
    // staging waits for them (a full pack in memory per upload).
    while (this.uploading.size >= (this.options.uploads ?? PACK_DEFAULTS.uploads)) await Promise.race(this.uploading);
    const upload: Promise<void> = this.repo.backend
      .put(packKey(packId.toString('hex')), pack)
      .then(() => {
        this.stored.packs += 1;
        this.stored.bytes += size;
        for (const frame of frames) {
          for (const chunk of frame.chunks) {
            const entry = encodeLocatedEntry({ id: chunk.id, pack: packId, frameOffset: frame.offset, frameLength: frame.length, chunkOffset: chunk.offset, chunkLength: chunk.length });
            this.segmentEntries.push(entry);
            chunk.placed.resolve(entry);
          }
        }
        if (this.segmentEntries.length >= MAX_SEGMENT_ENTRIES) return this.writeSegment();
        return undefined;
      })
      .catch((error: unknown) => {
        this.failure ??= { error };
        for (const frame of frames) for (const chunk of frame.chunks) chunk.placed.reject(error);
      })
      .finally(() => {
        this.uploading.delete(upload);
        if (this.spare.length < 2) this.spare.push(whole); // the put is over: its bytes may be overwritten
      });
    this.uploading.add(upload);
  }

  /** Stores the entries gathered so far as one index segment (after the packs they name). */
  private async writeSegment(): Promise<void> {
    const entries = this.segmentEntries.splice(0, MAX_SEGMENT_ENTRIES);
    const plaintext = encodeSegment(entries);
    const id = this.repo.codec.idOf(plaintext);
    const sealed = await this.repo.pool.seal(plaintext, ObjectKind.indexSegment, id);
    await this.repo.backend.put(segmentKey(id.toString('hex')), sealed);
    this.stored.segments += 1;
    this.stored.bytes += sealed.length;
  }

  private get packSize(): number {
    return this.options.packSize ?? PACK_DEFAULTS.packSize;
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) {
      const error = this.failure.error;
      throw error instanceof CofferError || error instanceof Error ? error : new Error(String(error));
    }
  }
}

/**
 * `buffer` (shared memory) with room for `more` bytes after its first `used`: allocated at
 * the pack size plus a frame's worst case on first use, grown (copied) only when a pack's
 * trailer does not fit.
 */
function ensureCapacity(buffer: Buffer | undefined, used: number, more: number, packSize: number): Buffer {
  if (buffer !== undefined && used + more <= buffer.length) return buffer;
  const size = Math.max(packSize + PACK_DEFAULTS.framePlaintext + 256 * 1024, Math.ceil((used + more) * 1.25));
  const grown = Buffer.from(new SharedArrayBuffer(size));
  if (buffer !== undefined) buffer.copy(grown, 0, 0, used);
  return grown;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // a rejection is seen by whoever awaits it, or by finish()
  return { promise, resolve, reject };
}
