import { assertReadInBounds, coalesceExtents, type BlockDevice, type Extent } from '../blockdev/index.js';
import { CofferError, isCofferError } from '../errors/index.js';
import { MovedChunks, PACK_DEFAULTS, type PinnedChunk, DiskIndexReader, entryId, FrameReader, imageFrameSlotBytes, isLocatedEntry, isZeroEntry, ObjectKind, type DiskRecord, type Repository } from '../repo/index.js';

/** Plaintext blocks kept for small random reads (file browsing): 16 × 256 KiB = 4 MiB. */
const CACHED_BLOCKS = 16;

/**
 * Format 2 read-ahead ({@link SnapshotDiskOptions.readAhead}): how far past a sequential
 * reader's last block the frames its next blocks need are fetched and opened, and how many
 * frames may be in flight at once (read-ahead stops there; the reads asked for count).
 * nbdcopy keeps 16 requests of 256 KiB in flight at `coffer serve` (NBD_DEFAULTS.maxInFlight),
 * i.e. 4 MiB: looking 8 MiB ahead (in blocks of the disk's size: 32 of 256 KiB, 128 of a
 * live disk's 64 KiB) reaches past them; 4 frames keep both codec workers busy with one more
 * queued each (measured: bench/serve-speed.ts).
 */
export const READ_AHEAD = { bytes: 8 * 1024 * 1024, frames: 4 } as const;

/** {@link SnapshotDisk.readPinned}'s answer: runs of zeros and of data views, in order, and how to unpin the views. */
export interface PinnedBlocks {
  runs: { offset: number; length: number; data?: Uint8Array[] }[];
  release(): void;
}

export interface SnapshotDiskOptions {
  /**
   * Format 2: when reads go forward through the disk, fetch and open the frames the next
   * blocks need before they are asked for (READ_AHEAD), within the frame cache's budget.
   * For sequential readers that ask a block at a time (`coffer serve`); restore reads ahead
   * by itself.
   */
  readAhead?: boolean;
  /** Format 2: bytes of decoded frames kept (FRAME_CACHE_BYTES by default; tests make it small). */
  frameCacheBytes?: number;
}

/**
 * One disk of a snapshot as a block device over the repository: restore, instant recovery,
 * file-level browsing and verify all read a backup through this. Blocks are fetched on
 * demand, opened (authenticated, decompressed, checked against their id) on the worker
 * pool; zero blocks are never fetched. A read that covers exactly one whole block into a
 * caller's buffer bypasses the cache (the sequential restore path); other reads go through
 * a small cache of recent blocks.
 */
export class SnapshotDisk implements BlockDevice {
  readonly size: number;
  private readonly index: DiskIndexReader;
  private readonly cache = new Map<number, Promise<Uint8Array>>();
  /** Format 2: chunks are read from their packs' frames, the last few decoded frames kept. */
  private readonly frames: FrameReader;
  /** What this disk fetched from the repository so far: chunks and their stored bytes. */
  readonly fetched = { chunks: 0, bytes: 0 };

  constructor(
    readonly repo: Repository,
    readonly snapshotId: string,
    readonly disk: DiskRecord,
    private readonly options: SnapshotDiskOptions = {},
  ) {
    this.size = disk.size;
    this.index = new DiskIndexReader(repo, disk);
    // Slots sized for this disk's frames: 8 blocks of a 64 KiB repository's take a quarter of the largest frame's slot.
    this.frames = new FrameReader(repo, options.frameCacheBytes, false, imageFrameSlotBytes(repo.config.blockSize, disk.blockSize));
  }

  /** The decoded frames of a format 2 repository this disk keeps, and what it fetched (figures for tests and benchmarks). */
  get frameCache(): Pick<FrameReader, 'fetched' | 'readAhead' | 'allocatedBytes' | 'budgetBytes'> {
    return this.frames;
  }

  get blockSize(): number {
    return this.disk.blockSize;
  }

  /** Consecutive blocks one fetch brings: a format 2 frame holds up to 8 (pack-writer.ts). */
  get blocksPerFetch(): number {
    return this.repo.config.version === 2 ? PACK_DEFAULTS.blocksPerFrame : 1;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    const blockSize = this.disk.blockSize;
    if (offset % blockSize === 0 && length === Math.min(blockSize, this.size - offset)) {
      // Shared memory lets the worker that opens the chunk write the plaintext straight into
      // it instead of sending it back to be copied (`coffer serve` reads whole blocks).
      const block = into === undefined ? new Uint8Array(new SharedArrayBuffer(length)) : into.subarray(0, length);
      await this.readBlock(offset / blockSize, block);
      return block;
    }
    if (offset % blockSize === 0 && (length % blockSize === 0 || offset + length === this.size) && this.repo.config.version === 2) {
      // Whole blocks on format 2 (nbdcopy's 256 KiB requests on a live disk's 64 KiB blocks):
      // each copied from its frame straight into its place, not through the block cache (a
      // buffer and a copy per block; measured: 64 KiB-block snapshots served with 30-40 %
      // less CPU). Shared memory measured cheaper here than Buffer.allocUnsafe (bench/README.md).
      const target = into === undefined ? new Uint8Array(new SharedArrayBuffer(length)) : into.subarray(0, length);
      const reads: Promise<void>[] = [];
      for (let at = 0; at < length; at += blockSize) reads.push(this.readBlock((offset + at) / blockSize, target.subarray(at, Math.min(length, at + blockSize))));
      await Promise.all(reads);
      return target;
    }
    const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    let done = 0;
    while (done < length) {
      const position = offset + done;
      const block = Math.floor(position / blockSize);
      const within = position - block * blockSize;
      const take = Math.min(length - done, blockSize - within);
      const data = await this.cachedBlock(block);
      target.set(data.subarray(within, within + take), done);
      done += take;
    }
    return target;
  }

  /**
   * Zero-copy read for `coffer serve` (the NBD server's PinnedReadDevice,
   * src/nbd/server/pinned-read.ts): a format 2 range of whole blocks as views into the decoded
   * frames that hold them, pinned in the frame cache until `release()`, zero blocks as runs of
   * zeros (no extents walk, no reply buffer, no copy). `undefined` for any other range or
   * format (`read()` serves it). A block that cannot be read releases the others and throws
   * what `read()` would.
   */
  async readPinned(offset: number, length: number): Promise<PinnedBlocks | undefined> {
    assertReadInBounds(this.size, offset, length);
    const blockSize = this.disk.blockSize;
    if (this.repo.config.version !== 2 || length === 0 || offset % blockSize !== 0 || (length % blockSize !== 0 && offset + length !== this.size)) return undefined;
    const first = offset / blockSize;
    const count = Math.ceil(length / blockSize);
    const pins: Promise<PinnedChunk | undefined>[] = [];
    for (let i = 0; i < count; i++) pins.push(this.pinBlock(first + i, Math.min(blockSize, this.size - (first + i) * blockSize)));
    const settled = await Promise.allSettled(pins);
    const releases: (() => void)[] = [];
    for (const pin of settled) if (pin.status === 'fulfilled' && pin.value !== undefined) releases.push(pin.value.release);
    const release = (): void => releases.forEach((one) => one());
    const runs: { offset: number; length: number; data?: Uint8Array[] }[] = [];
    for (let i = 0; i < count; i++) {
      const pin = settled[i] as PromiseSettledResult<PinnedChunk | undefined>;
      if (pin.status === 'rejected') {
        release();
        throw pin.reason;
      }
      const at = (first + i) * blockSize;
      const n = Math.min(blockSize, this.size - at);
      const last = runs[runs.length - 1];
      if (pin.value === undefined) {
        if (last !== undefined && last.data === undefined) last.length += n;
        else runs.push({ offset: at, length: n });
      } else if (last?.data !== undefined) {
        last.length += n;
        last.data.push(pin.value.view);
      } else {
        runs.push({ offset: at, length: n, data: [pin.value.view] });
      }
    }
    return { runs, release };
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    yield* coalesceExtents(this.blockExtents(offset, offset + length));
  }

  async close(): Promise<void> {
    this.cache.clear();
  }

  /**
   * Block `block` (`length` bytes) as a view into its decoded frame, pinned until released
   * (located entries), a buffer of its own (other entries), or `undefined` for a zero block.
   */
  private async pinBlock(block: number, length: number): Promise<PinnedChunk | undefined> {
    const raw = await this.index.rawEntry(block);
    if (isZeroEntry(raw)) return undefined;
    if (!isLocatedEntry(raw)) {
      const view = Buffer.from(new SharedArrayBuffer(length));
      await this.readBlock(block, view);
      return { view, release: () => undefined };
    }
    try {
      if (this.options.readAhead === true) this.readAhead(block);
      const before = { ...this.frames.fetched };
      let pinned: PinnedChunk | undefined;
      await MovedChunks.of(this.repo).read(raw, async (entry) => {
        pinned = await this.frames.pin(entry, length);
      });
      this.fetched.chunks += this.frames.fetched.frames - before.frames;
      this.fetched.bytes += this.frames.fetched.bytes - before.bytes;
      if (pinned === undefined) throw new Error(`block ${block} was read but not pinned`);
      return pinned;
    } catch (error) {
      throw this.explained(error, block, raw, length);
    }
  }

  /** Reads block `block` into `target` (exactly the block's length). */
  async readBlock(block: number, target: Uint8Array): Promise<void> {
    const raw = await this.index.rawEntry(block);
    if (isZeroEntry(raw)) {
      target.fill(0);
      return;
    }
    const entry = entryId(raw);
    const hex = entry.toString('hex');
    try {
      if (isLocatedEntry(raw)) {
        if (this.options.readAhead === true) this.readAhead(block);
        const before = { ...this.frames.fetched };
        await this.readLocated(raw, target);
        this.fetched.chunks += this.frames.fetched.frames - before.frames;
        this.fetched.bytes += this.frames.fetched.bytes - before.bytes;
        return;
      }
      const blob = await this.repo.getChunkBlob(entry);
      this.fetched.chunks += 1;
      this.fetched.bytes += blob.length;
      // Workers write straight into shared memory; any other buffer gets a copy back.
      const shared = target.buffer instanceof SharedArrayBuffer;
      const opened = await this.repo.pool.open(blob, { kind: ObjectKind.chunk, name: `chunks/${hex}`, id: entry, rehash: false, ...(shared ? { into: target } : {}) });
      const length = opened.length;
      if (opened.plaintext !== null && length === target.length) target.set(opened.plaintext);
      if (length !== target.length) {
        throw new CofferError('E_CORRUPT_OBJECT', `chunk ${hex} holds ${length} bytes where block ${block} needs ${target.length}`, { subject: { object: hex } });
      }
    } catch (error) {
      throw this.explained(error, block, raw, target.length);
    }
  }

  /** A missing or corrupt chunk named with the snapshot, disk, chunk and bytes it held; other errors as they are. */
  private explained(error: unknown, block: number, raw: Buffer, length: number): unknown {
    if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) return error;
    const hex = entryId(raw).toString('hex');
    const offset = block * this.disk.blockSize;
    const what = error.code === 'E_MISSING_OBJECT' ? 'is missing' : 'is corrupt';
    return new CofferError(
      error.code,
      `snapshot ${this.snapshotId.slice(0, 8)} disk ${this.disk.name}: chunk ${hex} for bytes ${offset}-${offset + length - 1} ${what}; run 'coffer verify'`,
      { subject: { snapshot: this.snapshotId, object: hex, offset }, cause: error },
    );
  }

  /**
   * Format 2: the chunk at its located entry; when that place is damaged or gone (a prune
   * repacked it), at the places the repository's index segments know for the same id, each
   * checked the same way; once a place was found gone, entries of packs the segments no
   * longer name go to the segments first, with no request to the removed pack (MovedChunks).
   */
  private readLocated(raw: Buffer, target: Uint8Array): Promise<void> {
    return MovedChunks.of(this.repo).read(raw, (entry) => this.frames.read(entry, target));
  }

  /** The last block read, the next block read-ahead has not looked at, and whether a look is running. */
  private readonly ahead = { last: -Infinity, next: 0, looking: false };

  /**
   * After a read of `block` near the previous one (a sequential reader, its requests in
   * flight arriving in any order): looks at the entries of the blocks up to READ_AHEAD.bytes
   * past it that it has not looked at yet, and prefetches their frames while fewer than
   * READ_AHEAD.frames are in flight. A read far from the previous one starts over there.
   */
  private readAhead(block: number): void {
    const window = Math.max(1, Math.ceil(READ_AHEAD.bytes / this.disk.blockSize));
    const near = Math.abs(block - this.ahead.last) <= window;
    this.ahead.last = block;
    if (!near) {
      this.ahead.next = block + 1;
      return;
    }
    this.ahead.next = Math.max(this.ahead.next, block + 1);
    if (this.ahead.looking) return;
    this.ahead.looking = true;
    const until = Math.min(this.index.blockCount, block + 1 + window);
    void this.lookAhead(until).finally(() => (this.ahead.looking = false));
  }

  private async lookAhead(until: number): Promise<void> {
    try {
      while (this.ahead.next < until && this.frames.inFlight < READ_AHEAD.frames) {
        const raw = await this.index.rawEntry(this.ahead.next);
        // (Where a prune moved the chunk to, when its pack is known gone: MovedChunks.)
        const place = isLocatedEntry(raw) && !isZeroEntry(raw) ? await MovedChunks.of(this.repo).placeOf(raw) : undefined;
        if (place !== undefined) this.frames.prefetch(place);
        this.ahead.next += 1;
      }
    } catch {
      // A damaged index page or entry: the read that needs it reports it.
    }
  }

  private cachedBlock(block: number): Promise<Uint8Array> {
    let data = this.cache.get(block);
    if (data === undefined) {
      const length = Math.min(this.disk.blockSize, this.size - block * this.disk.blockSize);
      const buffer = new Uint8Array(new SharedArrayBuffer(length));
      data = this.readBlock(block, buffer).then(() => buffer);
      data.catch(() => this.cache.delete(block));
      this.cache.set(block, data);
      while (this.cache.size > CACHED_BLOCKS) this.cache.delete(this.cache.keys().next().value as number);
    } else {
      this.cache.delete(block);
      this.cache.set(block, data); // most recent last
    }
    return data;
  }

  private async *blockExtents(start: number, end: number): AsyncIterable<Extent> {
    const blockSize = this.disk.blockSize;
    for (let block = Math.floor(start / blockSize); block * blockSize < end; block++) {
      const from = Math.max(start, block * blockSize);
      const to = Math.min(end, (block + 1) * blockSize);
      const zero = isZeroEntry(await this.index.entry(block));
      yield { offset: from, length: to - from, kind: zero ? 'zero' : 'data' };
    }
  }
}
