import { CofferError } from '../errors/index.js';
import { alignedSharedBuffer, copyBytes } from '../native/index.js';
import { rememberSha256 } from './backend/known-sha256.js';
import { ObjectKind } from './format/envelope.js';
import { encodeLocatedEntry } from './format/located-entry.js';
import { encodeSegment, MAX_SEGMENT_ENTRIES } from './format/index-segment.js';
import { encodeTrailer, MAX_CHUNKS_PER_FRAME, packFooter, packHeader, PACK_FOOTER_SIZE, PACK_HEADER_SIZE, UNADDRESSED_ID } from './format/pack.js';
import { FrameSlot } from './frame-slot.js';
import { packKey, segmentKey } from './layout.js';
import type { Repository } from './repository.js';

/**
 * Defaults of the pack writer, each with its reason.
 * - 8 blocks / 2 MiB per frame: zstd over 2 MiB stores 6.7 % less than over 256 KiB (bench
 *   disk, level 3, docs/decisions/2026-11-26-packs-and-gc.md), and a random read decodes at
 *   most 2 MiB.
 * - 8 MiB packs: a 1 TB full is ~125,000 objects instead of 4 million (S3 gateway CPU per
 *   object, PUT cost, inodes). The design said ~32 MiB; with 32 the bench's 4 GiB full peaked
 *   at 274-283 MiB RSS, with 16 at 258 MiB even after the frames were sealed in place and
 *   the young generation kept small (2026-11-26), over the 256 MiB target; 8 peaked at
 *   235 MiB (bench/README.md, "Repository format 2").
 * - 1 pack uploading while the next fills: the storage stays busy, and each more costs a
 *   pack buffer (~18.3 MiB). Remote stores may want more (not measured yet).
 * - `threads × 2` frames sealing plus the one being staged: each worker has one frame to seal
 *   and one waiting, as format 1 keeps two groups in flight per thread.
 */
export const PACK_DEFAULTS = { blocksPerFrame: 8, framePlaintext: 2 * 1024 * 1024, packSize: 8 * 1024 * 1024, uploads: 1, sealingPerThread: 2 } as const;

/**
 * Chunks per pack frame of an image backup run whose smallest disk block is `smallestBlock` in
 * a repository of `blockSize` blocks: {@link PACK_DEFAULTS}.blocksPerFrame (8) when every disk
 * has the repository's block size; else as many as make 2 MiB of the smallest blocks (32 of
 * 64 KiB), so a tracked disk's frames compress and decode as the others do. A frame also closes
 * once it holds 2 MiB of chunks.
 *
 * @example chunksPerImageFrame(256 * 1024, 64 * 1024) // 32
 */
export function chunksPerImageFrame(blockSize: number, smallestBlock: number): number {
  if (smallestBlock >= blockSize) return PACK_DEFAULTS.blocksPerFrame;
  return Math.min(MAX_CHUNKS_PER_FRAME, Math.max(PACK_DEFAULTS.blocksPerFrame, Math.floor(PACK_DEFAULTS.framePlaintext / smallestBlock)));
}

/** What the writer must tell each chunk of a frame once its pack is stored. */
interface FrameChunkPlace {
  id: Buffer;
  offset: number;
  length: number;
  placed: Deferred<Buffer>;
}

interface FrameInPack {
  offset: number;
  length: number;
  chunks: FrameChunkPlace[];
}

/**
 * Writes the new chunks of a backup into packs (format 2, format/pack.ts): chunks are copied
 * into frames of up to 8 (≤ 2 MiB, one disk's blocks in the order they come), each frame is
 * compressed and encrypted in place on a codec worker, frames are appended to the pack being
 * filled, and a pack is stored with one PUT once it reaches 8 MiB or the disk ends (its id
 * is the SHA-256 of its bytes, computed on a worker). A chunk's located entry
 * (format/located-entry.ts) is known once its pack is stored: {@link stage} hands back a
 * promise of it. What the backup added is written as index segments (format/index-segment.ts)
 * after the packs they name, at most 65,536 entries each.
 *
 * Memory is a fixed budget ({@link memoryBudget}), allocated once per writer and reused:
 * `threads × 2 + 1` frame slots in shared memory (frame-slot.ts: one staging, the others
 * sealing or waiting to be appended) and `uploads + 1` pack buffers (one filling, the others
 * uploading), plus 80 bytes per new chunk until a segment is written (≤ 5 MiB). Back-pressure
 * runs one way: a pack that cannot start its PUT holds the appending of sealed frames, whose
 * slots then stay busy, so staging waits for a free slot, so the backup stops reading. A
 * failure anywhere (a worker, a PUT) is kept; every wait sees it and every pending chunk's
 * promise rejects with it. Not for concurrent backups sharing one writer: one writer per run.
 */
export class PackWriter {
  private readonly freeSlots: FrameSlot[] = [];
  /** Slots made for one chunk too large for a pooled slot: dropped once sealed, never reused. */
  private readonly oversized = new WeakSet<FrameSlot>();
  /** The last oversized frame's sealing: the next waits for it, so one such frame's memory at a time. */
  private oversizedSealed: Promise<void> = Promise.resolve();
  private slotsMade = 0;
  private readonly slotWaiters: (() => void)[] = [];
  /** The frame being staged and the promises of its chunks. */
  private staging: { slot: FrameSlot; placed: Deferred<Buffer>[] } | undefined;
  /** Staging calls, in order: each copies its chunk once a slot is free. */
  private stagingChain: Promise<void> = Promise.resolve();
  /** Appends of sealed frames to the pack, in the order the frames were sealed. */
  private appendChain: Promise<void> = Promise.resolve();
  private frames: FrameInPack[] = [];
  /** Chunks in the frames of the pack being filled. */
  private packChunks = 0;
  /** The pack being filled, in shared memory (hashed on a worker without a copy); taken on its first frame. */
  private current: Buffer | undefined;
  private packBytes = PACK_HEADER_SIZE;
  /** Pack buffers not in use: one is taken per pack and given back once its PUT is over. */
  private readonly spare: Buffer[] = [];
  private readonly sealing = new Set<Promise<void>>();
  private readonly uploading = new Set<Promise<void>>();
  private segmentEntries: Buffer[] = [];
  private failure: { error: unknown } | undefined;
  private readonly maxSlots: number;
  private readonly slotCapacity: number;
  private readonly perFrame: number;
  /** What this writer stored: packs, segments, and their bytes (sealed frames, trailers, segments). */
  readonly stored = { packs: 0, segments: 0, bytes: 0, framesSealedBytes: 0 };
  /** What this writer holds: the shared memory it allocated (slots and pack buffers), and the most PUTs of packs at once. */
  readonly held = { allocatedBytes: 0, peakUploads: 0 };

  constructor(
    private readonly repo: Repository,
    /**
     * `chunksPerPack`: a pack is also closed once it holds this many chunks (none by default):
     * each chunk waits for its pack to be stored before its entry is known, and a pack of
     * tiny chunks (small files) would keep tens of thousands of them waiting at once.
     */
    private readonly options: { packSize?: number; uploads?: number; blocksPerFrame?: number; sealing?: number; chunksPerPack?: number } = {},
  ) {
    if (repo.config.version !== 2) throw new Error('packs are written only in format 2 repositories');
    this.maxSlots = (options.sealing ?? repo.pool.threads * PACK_DEFAULTS.sealingPerThread) + 1;
    this.perFrame = Math.min(options.blocksPerFrame ?? PACK_DEFAULTS.blocksPerFrame, MAX_CHUNKS_PER_FRAME);
    this.slotCapacity = FrameSlot.capacity(this.perFrame, PACK_DEFAULTS.framePlaintext, repo.config.blockSize);
  }

  /**
   * The most shared memory this writer allocates: its frame slots and pack buffers (a pack
   * whose trailer does not fit its buffer, which takes thousands of frames that compress
   * to almost nothing, grows one buffer by a quarter).
   */
  get memoryBudget(): number {
    return this.maxSlots * this.slotCapacity + (this.uploads + 1) * this.packCapacity;
  }

  /**
   * Stages a new chunk. `data` must stay unchanged until `ready` resolves: the chunk is
   * copied into a frame once a frame slot is free (back-pressure). `placed` resolves with the
   * chunk's 80-byte located entry once its pack is stored, or rejects if storing fails.
   */
  stage(id: Buffer, data: Uint8Array): { placed: Promise<Buffer>; ready: Promise<void> } {
    const placed = deferred<Buffer>();
    const ready = this.stagingChain.then(() => this.stageNow(id, data, placed));
    ready.catch((error: unknown) => placed.reject(error));
    this.stagingChain = ready.catch(() => undefined);
    return { placed: placed.promise, ready };
  }

  /** {@link stage}, waiting until `data` is copied. */
  async add(id: Buffer, data: Uint8Array): Promise<{ placed: Promise<Buffer> }> {
    const { placed, ready } = this.stage(id, data);
    await ready;
    return { placed };
  }

  /**
   * Seals what is staged as a frame (the end of a disk: frames never mix disks) and waits
   * until every frame is sealed and appended (not uploaded).
   */
  async flushFrame(): Promise<void> {
    await this.stagingChain;
    this.throwIfFailed();
    if (this.staging !== undefined) this.sealStaging();
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
    this.fail(error);
    await this.stagingChain;
    await Promise.allSettled([...this.sealing, ...this.uploading]);
  }

  private async stageNow(id: Buffer, data: Uint8Array, placed: Deferred<Buffer>): Promise<void> {
    this.throwIfFailed();
    if (this.staging !== undefined && !this.staging.slot.fits(data.length)) this.sealStaging();
    if (data.length > FrameSlot.largestChunk(PACK_DEFAULTS.framePlaintext, this.repo.config.blockSize)) return this.stageOversized(id, data, placed);
    this.staging ??= { slot: await this.takeSlot(), placed: [] };
    this.staging.slot.add(id, data);
    this.staging.placed.push(placed);
    if (this.staging.slot.count >= this.perFrame || this.staging.slot.bytes >= PACK_DEFAULTS.framePlaintext) this.sealStaging();
  }

  /**
   * A chunk larger than a pooled slot takes — the tree of a directory of tens of thousands of
   * entries (a file tree is one chunk, 100-400 bytes an entry), or a chunk of a repository
   * written with a larger block size — is sealed alone, in a frame of its own, in memory made
   * for it and dropped once the frame is sealed (the pack buffer it is appended to grows for
   * it, and is not kept for later packs). The format allows frames of any size
   * (docs/repository-format.md §19.2); readers open such a frame into memory of its own
   * (frame-reader.ts). One such frame at a time: the next waits until this one is sealed.
   */
  private async stageOversized(id: Buffer, data: Uint8Array, placed: Deferred<Buffer>): Promise<void> {
    await this.oversizedSealed;
    this.throwIfFailed();
    const slot = new FrameSlot(1, data.length, 0);
    this.oversized.add(slot);
    slot.add(id, data);
    this.staging = { slot, placed: [placed] };
    this.oversizedSealed = this.sealStaging().catch(() => undefined);
  }

  /** A free frame slot, made while fewer than the budget's exist; waits for one otherwise. */
  private async takeSlot(): Promise<FrameSlot> {
    for (;;) {
      this.throwIfFailed();
      const free = this.freeSlots.pop();
      if (free !== undefined) return free;
      if (this.slotsMade < this.maxSlots) {
        this.slotsMade += 1;
        this.held.allocatedBytes += this.slotCapacity;
        return new FrameSlot(this.perFrame, PACK_DEFAULTS.framePlaintext, this.repo.config.blockSize);
      }
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    }
  }

  private releaseSlot(slot: FrameSlot): void {
    if (this.oversized.has(slot)) return; // made for one chunk: left to the garbage collector
    slot.reset();
    this.freeSlots.push(slot);
    this.slotWaiters.shift()?.();
  }

  /** Sends the staged frame to a worker to be sealed in place, then queues its append; resolves once it is appended (or failed). */
  private sealStaging(): Promise<void> {
    const { slot, placed } = this.staging as NonNullable<typeof this.staging>;
    this.staging = undefined;
    const laid = slot.close();
    const chunks = laid.chunks.map((c, i) => ({ ...c, placed: placed[i] as Deferred<Buffer> }));
    const task: Promise<void> = this.repo.pool
      .sealFrame(slot.memory, laid.length)
      .then((sealedLength) => this.queueAppend(slot.memory.subarray(0, sealedLength), chunks))
      .catch((error: unknown) => {
        this.fail(error);
        for (const chunk of chunks) chunk.placed.reject(error);
      })
      .finally(() => {
        this.sealing.delete(task);
        this.releaseSlot(slot);
      });
    this.sealing.add(task);
    return task;
  }

  /** Appends one sealed frame after those sealed before it (one append at a time). */
  private queueAppend(sealed: Buffer, chunks: FrameChunkPlace[]): Promise<void> {
    const appended = this.appendChain.then(() => {
      this.throwIfFailed();
      return this.append(sealed, chunks);
    });
    this.appendChain = appended.catch(() => undefined);
    return appended;
  }

  /** Copies a sealed frame into the pack being filled; closes the pack when full. */
  private async append(sealed: Buffer, chunks: FrameChunkPlace[]): Promise<void> {
    this.frames.push({ offset: this.packBytes, length: sealed.length, chunks });
    this.packChunks += chunks.length;
    this.current ??= this.spare.pop() ?? this.newPackBuffer();
    this.current = this.ensureCapacity(this.current, this.packBytes, sealed.length);
    copyBytes(this.current, sealed, this.packBytes);
    this.packBytes += sealed.length;
    this.stored.framesSealedBytes += sealed.length;
    if (this.packBytes >= this.packSize || this.packChunks >= (this.options.chunksPerPack ?? Infinity)) await this.closePack();
  }

  /**
   * Builds the pack (header, frames, trailer, footer), hashes it on a worker and starts its
   * PUT once fewer than `uploads` run (until then, the appends behind it wait).
   */
  private async closePack(): Promise<void> {
    const frames = this.frames;
    const filled = this.packBytes;
    this.frames = [];
    this.packChunks = 0;
    this.packBytes = PACK_HEADER_SIZE;
    const trailerPlain = encodeTrailer({
      frames: frames.map((f) => ({ offset: f.offset, length: f.length })),
      chunks: frames.flatMap((f, frame) => f.chunks.map((c) => ({ id: c.id, frame, offset: c.offset, length: c.length }))),
    });
    const trailer = this.repo.codec.seal(trailerPlain, ObjectKind.packTrailer, UNADDRESSED_ID);
    const size = filled + trailer.length + PACK_FOOTER_SIZE;
    const whole = this.ensureCapacity(this.current as Buffer, filled, trailer.length + PACK_FOOTER_SIZE);
    this.current = undefined;
    const pack = whole.subarray(0, size);
    packHeader().copy(pack, 0);
    trailer.copy(pack, filled);
    packFooter(trailer.length).copy(pack, filled + trailer.length);
    const packId = await this.repo.pool.sha256(pack);
    rememberSha256(pack, packId); // the layers below reuse it (known-sha256.ts)
    while (this.uploading.size >= this.uploads) {
      await Promise.race(this.uploading);
      this.throwIfFailed();
    }
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
        this.fail(error);
        for (const frame of frames) for (const chunk of frame.chunks) chunk.placed.reject(error);
      })
      .finally(() => {
        this.uploading.delete(upload);
        // The put is over: its bytes may be overwritten. A buffer grown for an oversized frame
        // is not kept for the packs after it.
        if (whole.length <= 2 * this.packCapacity) this.spare.push(whole);
      });
    this.uploading.add(upload);
    this.held.peakUploads = Math.max(this.held.peakUploads, this.uploading.size);
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

  /** A pack's bytes before its trailer: the pack size plus the frame that crosses it. */
  private get packCapacity(): number {
    return this.packSize + this.slotCapacity + 256 * 1024;
  }

  /** A pack buffer in shared memory (hashed on a worker without a copy), placed for direct writes (local-backend.ts). */
  private newPackBuffer(): Buffer {
    this.held.allocatedBytes += this.packCapacity;
    return alignedSharedBuffer(this.packCapacity);
  }

  /**
   * `buffer` with room for `more` bytes after its first `used`; grown (copied) only when a
   * pack's trailer does not fit.
   */
  private ensureCapacity(buffer: Buffer, used: number, more: number): Buffer {
    if (used + more <= buffer.length) return buffer;
    const grown = alignedSharedBuffer(Math.ceil((used + more) * 1.25));
    this.held.allocatedBytes += grown.length - buffer.length;
    buffer.copy(grown, 0, 0, used);
    return grown;
  }

  private get packSize(): number {
    return this.options.packSize ?? PACK_DEFAULTS.packSize;
  }

  private get uploads(): number {
    return this.options.uploads ?? PACK_DEFAULTS.uploads;
  }

  private fail(error: unknown): void {
    if (this.failure === undefined) {
      this.failure = { error };
      const staged = this.staging;
      this.staging = undefined;
      if (staged !== undefined) {
        for (const placed of staged.placed) placed.reject(error);
        this.releaseSlot(staged.slot);
      }
    }
    for (const wake of this.slotWaiters.splice(0)) wake();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) {
      const error = this.failure.error;
      throw error instanceof CofferError || error instanceof Error ? error : new Error(String(error));
    }
  }
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
  // A caller may never await a placement (the pack failed, the backup stops): its rejection
  // must not be unhandled, which would end the process with a stack trace. Awaiting it still
  // throws, and finish() sees the failure.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
