import { SharedBufferPool } from '../concurrency/index.js';
import { CofferError, isCofferError } from '../errors/index.js';
import { readRange } from './backend/read-range.js';
import { decodeLocatedEntry, type ChunkLocation } from './format/located-entry.js';
import { decodeEnvelopeHeader, ObjectKind } from './format/envelope.js';
import { MAX_CHUNKS_PER_FRAME } from './format/pack.js';
import { chunkInFrame, openFrame } from './frame-codec.js';
import { FrameSlot } from './frame-slot.js';
import { packKey } from './layout.js';
import { chunksPerImageFrame, PACK_DEFAULTS } from './pack-writer.js';
import type { Repository } from './repository.js';
import { copyBytes, sharedMemory } from '../native/index.js';

/**
 * A slot's bytes: the largest frame a pack writer makes with blocks of `blockSize` (2 MiB
 * of chunks, plus one that crosses the limit, and a table of up to 64 chunks: files' frames
 * hold 64 where images' hold 8). Sized for 8, a full frame of small files was 2 KB too large
 * for a slot: opened into memory of its own and dropped after its read, 12 % of a file
 * restore's frames were decoded twice or three times.
 */
export function frameSlotBytes(blockSize: number): number {
  return FrameSlot.capacity(MAX_CHUNKS_PER_FRAME, PACK_DEFAULTS.framePlaintext, blockSize);
}

/**
 * A slot's bytes for the frames of one image disk cut into `diskBlockSize` blocks in a
 * repository of `blockSize` blocks: `chunksPerImageFrame` blocks (8 of 64 KiB in a repository
 * made with `--block-size 64K`: 512 KiB, where {@link frameSlotBytes} makes room for 2 MiB and
 * a block, so a cache held a quarter of the frames it could). A frame that does not fit (one
 * holding chunks of another backup: a file backup's, a run with smaller blocks) is opened
 * into memory of its own; the reader's slots grow to {@link frameSlotBytes} once a few have.
 */
export function imageFrameSlotBytes(blockSize: number, diskBlockSize: number): number {
  const chunks = chunksPerImageFrame(blockSize, diskBlockSize);
  return FrameSlot.capacity(chunks, Math.min((chunks - 1) * diskBlockSize, PACK_DEFAULTS.framePlaintext), diskBlockSize);
}

/** Frames too large for a reader's slots after which its slots grow to the largest frame's size. */
const GROW_AFTER_OVERSIZED = 4;

/**
 * Bytes of decoded frames kept: 12 frames of the default size (2 MiB of blocks, plus a block
 * that crosses the limit and the table), more than a restore has in flight (its read-ahead
 * is `threads × 4` frames' worth of blocks, restore-disk.ts), so no frame is decoded twice.
 */
export const FRAME_CACHE_BYTES = 12 * frameSlotBytes(256 * 1024);

/**
 * Bytes of decoded frames kept by a reader that opens them on the main thread (file trees):
 * counted by their real size, not in slots. A file backup's incremental reads every tree of
 * its parent in the order of its own walk, not the order the trees were written in: the
 * bench's 60,000 files have 129 frames of trees (19 MB decoded), which 12 slots made 787
 * fetches and decodes; this keeps them all, and the trees of larger snapshots by recency.
 */
export const MAIN_THREAD_FRAME_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Stored frames being read and opened at once, each in a landing buffer of shared memory
 * reused from frame to frame: a fresh buffer per frame, moved to a worker, lived until that
 * worker's garbage collection (serve's RSS and its helper threads' GC; the restore's peak RSS
 * fell 85 MiB when its span reads stopped doing so). Two per codec thread keep both busy.
 */
const LANDINGS = 4;
/** Room in a landing buffer beyond a slot's plaintext: a frame stored uncompressed carries its envelope too. */
const LANDING_MARGIN = 4096;

/** A chunk's bytes inside a decoded frame, valid until `release()`. */
export interface PinnedChunk {
  readonly view: Buffer;
  release(): void;
}

interface OpenedFrame {
  plaintext: Buffer;
  table: { id: Buffer; offset: number; length: number }[];
}

interface CachedFrame {
  opened: Promise<OpenedFrame>;
  /** The shared memory the plaintext is in, reused once the frame leaves the cache; none for an oversized frame. */
  slot: Buffer | undefined;
  /** Reads between asking for the frame and copying their chunk out: the slot is not reused meanwhile. */
  readers: number;
  settled: boolean;
  /** Asked for by a read at least once (a frame fetched ahead is not until its first read). */
  used: boolean;
  /** Main thread: the decoded bytes counted in the reader's budget (0 until opened). */
  bytes: number;
}

/**
 * Reads chunks of a format 2 repository through their located entries: one ranged read of the
 * chunk's frame, opened on a worker (authenticated, decompressed; every chunk rehashed in an
 * unencrypted repository) straight into a slot of shared memory, then the chunk checked
 * against the frame's table and copied out. The last decoded frames are kept, up to a budget
 * in bytes ({@link FRAME_CACHE_BYTES}: fixed slots, allocated as needed and reused), so a
 * sequential restore decodes each frame once for its up to 8 blocks, and concurrent reads of
 * one frame share one fetch. A frame bigger than a slot (written with other settings) is
 * opened into memory of its own and kept the same way, past the budget, while it is read.
 */
export class FrameReader {
  private readonly cache = new Map<string, CachedFrame>();
  /** Slots not holding a frame, all of {@link slotSize}. */
  private readonly freeSlots: Buffer[] = [];
  /** Shared memory of the slots made and not dropped. */
  private slotBytes = 0;
  private maxSlots: number;
  /** Main thread: decoded bytes of the frames kept, and their budget. */
  private keptBytes = 0;
  private readonly cacheBytes: number;
  /** The bytes of a slot: the frames expected, until {@link GROW_AFTER_OVERSIZED} larger ones came. */
  private slotSize: number;
  private readonly largestSlotSize: number;
  private oversized = 0;
  /** Shared memory stored frames are read into (allocated as needed); a frame larger than one is read into memory of its own. */
  private readonly landings: SharedBufferPool;
  /** Frames fetched and their stored bytes. */
  readonly fetched = { frames: 0, bytes: 0 };
  /** Frames fetched by {@link prefetch}, before a read asked for them. */
  readAhead = 0;

  /**
   * `onMainThread`: frames are opened on this thread instead of the codec pool, for a reader
   * of small objects whose frames the caller decodes further anyway (file trees,
   * file-trees.ts): a command that reads only those never starts the pool's threads. Such a
   * reader opens each frame into memory of its exact size and keeps up to `cacheBytes` of
   * them (no slots: those are for frames a worker decodes into shared memory). `slotBytes`:
   * the frames this reader expects ({@link imageFrameSlotBytes}), by default the largest any
   * backup writes ({@link frameSlotBytes}).
   */
  constructor(
    private readonly repo: Repository,
    cacheBytes = FRAME_CACHE_BYTES,
    private readonly onMainThread = false,
    slotBytes?: number,
  ) {
    this.cacheBytes = cacheBytes;
    this.largestSlotSize = frameSlotBytes(repo.config.blockSize);
    this.slotSize = Math.min(slotBytes ?? this.largestSlotSize, this.largestSlotSize);
    this.maxSlots = Math.max(1, Math.floor(cacheBytes / this.slotSize));
    this.landings = new SharedBufferPool(this.largestSlotSize + LANDING_MARGIN, LANDINGS, { lazy: true });
  }

  /** The most shared memory decoded frames may take: whole slots within the budget, at least one. */
  get budgetBytes(): number {
    return this.maxSlots * this.slotSize;
  }

  /** Shared memory allocated for decoded frames (at most the cache's budget). */
  get allocatedBytes(): number {
    return this.slotBytes;
  }

  /** Reads the chunk of a located entry into `target` (exactly its length). */
  async read(entry: Buffer, target: Uint8Array): Promise<void> {
    const pinned = await this.pin(entry, target.length);
    try {
      copyBytes(target, pinned.view);
    } finally {
      pinned.release();
    }
  }

  /**
   * The chunk of a located entry (`length` bytes) as a view into its decoded frame, without a
   * copy (`coffer serve` writes it to the socket as it is). The frame's memory is pinned until
   * `release()` (idempotent): its slot is not given to another frame before, however small
   * the cache; a frame that finds every slot pinned is opened into memory of its own.
   */
  async pin(entry: Buffer, length: number): Promise<PinnedChunk> {
    const location = decodeLocatedEntry(entry, 'index entry');
    if (location.chunkLength !== length) {
      throw new CofferError('E_CORRUPT_OBJECT', `chunk ${location.id.toString('hex')} holds ${location.chunkLength} bytes where ${length} are needed`, { subject: { object: location.id.toString('hex') } });
    }
    const cached = this.frame(location);
    cached.readers += 1;
    cached.used = true;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      cached.readers -= 1;
      if (cached.readers === 0 && cached.settled) this.trim();
    };
    try {
      const frame = await cached.opened;
      chunkInFrame(frame.table, location.id, location.chunkOffset, location.chunkLength, frameName(location));
      return { view: frame.plaintext.subarray(location.chunkOffset, location.chunkOffset + location.chunkLength), release };
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * Read-ahead: starts fetching and opening the frame of a located entry before a read asks
   * for it, when it is neither cached nor being fetched and a slot is free within the budget
   * (a free slot, a new one below the budget, or the least recent idle frame's; never memory
   * past the budget). Returns whether it started one. A failure is left to the read that
   * needs the frame (the failed frame is not kept).
   */
  prefetch(entry: Buffer): boolean {
    const location = decodeLocatedEntry(entry, 'index entry');
    const key = frameKey(location);
    if (this.cache.has(key)) return false;
    const slot = this.takeSlot(false);
    if (slot === undefined) return false;
    this.start(key, location, slot);
    this.readAhead += 1;
    return true;
  }

  /** Frames being fetched or opened now. */
  get inFlight(): number {
    return this.opening;
  }

  private opening = 0;

  private frame(location: ChunkLocation): CachedFrame {
    const key = frameKey(location);
    const found = this.cache.get(key);
    if (found !== undefined) {
      this.cache.delete(key);
      this.cache.set(key, found); // most recent last
      return found;
    }
    return this.start(key, location, this.takeSlot(true));
  }

  private start(key: string, location: ChunkLocation, slot: Buffer | undefined): CachedFrame {
    const cached: CachedFrame = { opened: this.fetch(location, slot), slot, readers: 0, settled: false, used: false, bytes: 0 };
    this.opening += 1;
    cached.opened.then(
      (opened) => {
        this.opening -= 1;
        cached.settled = true;
        if (this.onMainThread && this.cache.get(key) === cached) {
          cached.bytes = opened.plaintext.length;
          this.keptBytes += cached.bytes;
        }
        this.trim();
      },
      () => {
        this.opening -= 1;
        cached.settled = true;
        if (this.cache.get(key) === cached) this.cache.delete(key);
        this.release(cached);
      },
    );
    this.cache.set(key, cached);
    return cached;
  }

  /**
   * A free slot, or a new one within the budget, or the least recent idle frame's (one already
   * read before one fetched ahead and not read yet, which only `unreadToo` takes); none when
   * every slot is busy.
   */
  private takeSlot(unreadToo: boolean): Buffer | undefined {
    if (this.onMainThread) return undefined;
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    for (const pass of unreadToo ? [null, true, false] : [null, true]) {
      if (pass === null) {
        if (this.slotBytes + this.slotSize > this.budgetBytes) continue;
        this.slotBytes += this.slotSize;
        return Buffer.from(sharedMemory(this.slotSize));
      }
      for (const [key, cached] of this.cache) {
        if (!this.idle(cached) || cached.slot === undefined || cached.used !== pass) continue;
        this.cache.delete(key);
        const slot = cached.slot;
        cached.slot = undefined;
        if (slot.length >= this.slotSize) return slot;
        // A slot of the size before the reader's slots grew: dropped, its memory then counts no more.
        this.slotBytes -= slot.length;
        return this.takeSlot(unreadToo);
      }
    }
    return undefined;
  }

  /**
   * A frame larger than the slots came: after {@link GROW_AFTER_OVERSIZED} of them the slots
   * grow to the largest frame's size (as many as the budget holds); free slots of the old size
   * are dropped at once, those holding frames when their frames leave.
   */
  private sawOversized(): void {
    if (this.slotSize >= this.largestSlotSize || ++this.oversized < GROW_AFTER_OVERSIZED) return;
    this.slotSize = this.largestSlotSize;
    this.maxSlots = Math.max(1, Math.floor(this.cacheBytes / this.slotSize));
    for (const slot of this.freeSlots) this.slotBytes -= slot.length;
    this.freeSlots.length = 0;
  }

  /** Drops the least recent idle frames while more are kept than slots exist (main thread: than their budget in bytes). */
  private trim(): void {
    if (this.onMainThread) {
      for (const [key, cached] of this.cache) {
        if (this.keptBytes <= this.cacheBytes) return;
        if (!this.idle(cached)) continue;
        this.cache.delete(key);
        this.keptBytes -= cached.bytes;
      }
      return;
    }
    for (const [key, cached] of this.cache) {
      if (this.cache.size <= this.maxSlots) return;
      if (!this.idle(cached)) continue;
      this.cache.delete(key);
      this.release(cached);
    }
  }

  private idle(cached: CachedFrame): boolean {
    return cached.settled && cached.readers === 0;
  }

  private release(cached: CachedFrame): void {
    if (cached.slot !== undefined && cached.slot.length >= this.slotSize) this.freeSlots.push(cached.slot);
    else if (cached.slot !== undefined) this.slotBytes -= cached.slot.length;
    cached.slot = undefined;
  }

  private async fetch(location: ChunkLocation, slot: Buffer | undefined): Promise<OpenedFrame> {
    const landing = location.frameLength <= this.landings.size ? await this.landings.acquire() : undefined;
    try {
      return await this.fetchInto(location, slot, landing);
    } finally {
      if (landing !== undefined) this.landings.release(landing);
    }
  }

  /** Reads the frame (into `landing`, when given) and opens it (into `slot`, when it fits). */
  private async fetchInto(location: ChunkLocation, slot: Buffer | undefined, landing: Uint8Array | undefined): Promise<OpenedFrame> {
    const name = frameName(location);
    const blob = await readStoredFrame(this.repo, location, name, landing);
    this.fetched.frames += 1;
    this.fetched.bytes += blob.length;
    const plaintextLength = decodeEnvelopeHeader(blob, ObjectKind.packFrame, name).plaintextLength;
    const into = slot !== undefined && plaintextLength <= slot.length ? slot : undefined;
    if (slot !== undefined && into === undefined) this.sawOversized();
    // Opened anywhere but a slot, the plaintext may be a view of the bytes read (a frame stored
    // raw, unencrypted): not of a landing buffer, which the next frame reuses.
    const stored = into === undefined && landing !== undefined ? Buffer.from(blob) : blob;
    if (this.onMainThread) {
      const opened = openFrame(this.repo.codec, stored, name, false, false, into);
      return { plaintext: opened.plaintext, table: opened.table.map((c) => ({ id: Buffer.from(c.id), offset: c.offset, length: c.length })) };
    }
    if (into !== undefined) {
      // Opened into the slot: nothing but the table crosses back from the worker.
      const opened = await this.repo.pool.openFrame(stored, { name, rehash: false, keep: true, into });
      return { plaintext: into.subarray(0, opened.length), table: opened.table };
    }
    const opened = await this.repo.pool.openFrame(stored, { name, rehash: false, keep: true });
    return { plaintext: opened.plaintext as Buffer, table: opened.table };
  }
}

function frameKey(location: Pick<ChunkLocation, 'pack' | 'frameOffset'>): string {
  return `${location.pack.toString('hex')}@${location.frameOffset}`;
}

/** How a frame is named in messages: `packs/<pack>@<offset>`. */
export function frameName(location: Pick<ChunkLocation, 'pack' | 'frameOffset'>): string {
  return `${packKey(location.pack.toString('hex'))}@${location.frameOffset}`;
}

/**
 * The stored bytes of the frame `location` names (one ranged read; into `into` when given);
 * a pack shorter than the frame's end is `E_MISSING_OBJECT`.
 */
export async function readStoredFrame(repo: Repository, location: ChunkLocation, name = frameName(location), into?: Uint8Array): Promise<Buffer> {
  try {
    return await readRange(repo.backend, packKey(location.pack.toString('hex')), location.frameOffset, location.frameLength, into);
  } catch (error) {
    if (isCofferError(error, 'E_CORRUPT_OBJECT')) throw new CofferError('E_MISSING_OBJECT', `frame ${name} is missing: the pack is shorter than the frame's end`, { subject: { object: name }, cause: error });
    throw error;
  }
}
