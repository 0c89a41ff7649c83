import type { SharedBufferPool } from '../../concurrency/index.js';
import { FastCdc, FILE_CHUNK_SIZES, MAX_CHUNKS_PER_FRAME, ObjectKind, type ChunkSizes, type ContentPiece, type Repository } from '../../repo/index.js';
import type { KnownChunks } from '../known-chunks.js';
import { PackedChunks } from '../packed-chunks.js';
import { copyBytes } from '../../native/index.js';

/** Figures of a file backup, added to as files are read. */
export interface FileBackupFigures {
  bytesRead: number;
  bytesNew: number;
  bytesStored: number;
}

/**
 * Reads bytes of one file or stream into `into[offset, offset + length)`, answering how many
 * it wrote: 0 only at the end.
 */
export type FillFunction = (into: Uint8Array, offset: number, length: number) => Promise<number>;

/**
 * Format 2: chunks per frame, the most a frame holds (format/pack.ts). A frame still closes at
 * 2 MiB, so large files' chunks (256 KiB–2 MiB) come 1–8 to a frame as image blocks do, while
 * small files come 64 to a frame: one worker task and one envelope per 64 files instead of 8,
 * and zstd sees more of them at once. Trees too, in packs of their own.
 */
const FILE_CHUNKS_PER_FRAME = MAX_CHUNKS_PER_FRAME;

/**
 * Format 2: tree packs close at 4 MiB (data packs at 16): trees are small (the bench's 12,500
 * files make ≈1,600 trees), and the pack writer's buffer is the pack size plus a frame, so
 * this keeps the second writer's memory at ≈6 MiB.
 */
const TREE_PACK_BYTES = 4 * 1024 * 1024;

/**
 * Cuts a byte stream into content-defined chunks and stores the new ones: each chunk is
 * hashed on the worker pool (the repository's keyed MAC, as for image blocks, so file and
 * image snapshots deduplicate together), checked against the ids this run knows and the
 * repository, then sealed on the pool and put. All-zero chunks are recorded as `zero`
 * pieces and never stored. Memory: one shared window of `2 × max chunk` bytes per stream
 * being read, from `windows` (its count bounds the files read at once); small files come
 * whole, in their own buffer ({@link storeBytes}).
 *
 * A stream's window (a large file) is cut and hashed in one worker task (`cutHashSeal`), so
 * the main thread neither cuts nor waits on a batch. The chunks of small files, read whole,
 * are cut on the main thread (a file under the minimum chunk size is one chunk, uncut) and
 * reach the pool in batches: the chunks asked for in one turn of the event loop (or,
 * while the workers are busy, until one of their tasks comes back) leave in one
 * `hashSealMany` task per thread (small files read in one turn are many chunks). A chunk marked `fresh` (of a file the parent snapshot did not have: almost
 * surely new) is sealed in the same task as it is hashed; a sealed chunk found stored is
 * dropped (wasted compression, never a wrong object). Other chunks are hashed first and
 * sealed only when new (an edited large file repeats most of its chunks).
 *
 * In a format 2 repository chunks are only hashed here: a new one is staged into the run's
 * pack writer, which seals it with up to 63 others in one frame (many small files share a
 * frame, and a pack holds thousands of them: one put per 16 MiB instead of one per chunk),
 * and "is it stored?" is asked of the run's placements, then of the repository's index
 * segments (docs/repository-format.md §19.10). Trees ({@link stageTree}) go the same way into
 * a second pack writer, so that a walk of the trees decodes frames of trees, not of file
 * data. A tree names a chunk (and a subtree) by id only, so it need not wait for any pack;
 * {@link finish} stores the last packs and the segments, and must end before the snapshot's
 * manifest is written.
 */
export class ChunkStore {
  private readonly cdc: FastCdc;
  private readonly writing = new Map<string, Promise<void>>();
  private sendScheduled = false;
  private tasksOnPool = 0;
  /** Format 2: the packs of file data, and those of trees. */
  private readonly packed: PackedChunks | undefined;
  private readonly treePacks: PackedChunks | undefined;
  private batch: { data: Uint8Array; seal: boolean; resolve: (hash: BatchedHash) => void; reject: (error: unknown) => void }[] = [];

  constructor(
    private readonly repo: Repository,
    private readonly windows: SharedBufferPool,
    private readonly known: KnownChunks,
    private readonly damaged: ReadonlySet<string>,
    readonly figures: FileBackupFigures,
    sizes: ChunkSizes = FILE_CHUNK_SIZES,
  ) {
    this.cdc = new FastCdc(sizes);
    if (repo.config.version === 2) {
      this.packed = new PackedChunks(repo, undefined, { blocksPerFrame: FILE_CHUNKS_PER_FRAME });
      this.treePacks = new PackedChunks(repo, undefined, { blocksPerFrame: FILE_CHUNKS_PER_FRAME, packSize: TREE_PACK_BYTES });
    }
  }

  /** Window size needed: two maximal chunks. */
  static windowSize(sizes: ChunkSizes = FILE_CHUNK_SIZES): number {
    return 2 * sizes.max;
  }

  /**
   * Reads up to `length` bytes through `fill` (fewer when it ends early), chunks and stores
   * them. Returns the pieces and how many bytes were read.
   */
  async storeStream(fill: FillFunction, length: number, fresh = false): Promise<{ pieces: ContentPiece[]; bytes: number }> {
    const window = await this.windows.acquire();
    const pieces: ContentPiece[] = [];
    let bytes = 0;
    try {
      let filled = 0;
      let ended = false;
      while (!ended || filled > 0) {
        // Fill the window (or up to the length asked for).
        while (!ended && filled < window.length && bytes + filled < length) {
          const n = await fill(window, filled, Math.min(window.length - filled, length - bytes - filled));
          if (n === 0) ended = true;
          filled += n;
        }
        if (bytes + filled >= length) ended = true;
        // Every whole chunk in the window (all of it once the stream ended), cut and hashed on
        // a worker; then each is looked up and stored from the window.
        let start = 0;
        const stored: Promise<ContentPiece>[] = [];
        if (filled > 0 && (ended || filled >= this.cdc.sizes.max)) {
          const cut = await this.repo.pool.cutHashSeal(window.subarray(0, filled), this.cdc.sizes, ended, fresh && this.packed === undefined);
          cut.lengths.forEach((size, i) => {
            stored.push(this.storeHashed(window.subarray(start, start + size), cut.results[i] as BatchedHash));
            start += size;
          });
        }
        pieces.push(...(await Promise.all(stored)));
        bytes += start;
        this.figures.bytesRead += start;
        copyBytes(window, window.subarray(start, filled));
        filled -= start;
        if (ended && filled === 0) break;
      }
    } finally {
      this.windows.release(window);
    }
    return { pieces, bytes };
  }

  /** Chunks and stores bytes already read whole (a small file); `data` must not change until this ends. */
  async storeBytes(data: Uint8Array, fresh = false): Promise<ContentPiece[]> {
    const cuts: Promise<ContentPiece>[] = [];
    for (let start = 0; start < data.length; ) {
      const size = this.cdc.cut(data, start, data.length);
      cuts.push(this.storeChunk(data.subarray(start, start + size), fresh));
      start += size;
    }
    const pieces = await Promise.all(cuts);
    this.figures.bytesRead += data.length;
    return pieces;
  }

  /**
   * Format 2: stores the last pack and the index segment of what this run added (every chunk
   * named by a tree is then stored), and counts their bytes. Nothing to do in format 1.
   */
  async finish(): Promise<void> {
    if (this.packed === undefined || this.treePacks === undefined) return;
    await Promise.all(this.writing.values());
    for (const packs of [this.packed, this.treePacks]) {
      await packs.writer.finish();
      this.figures.bytesStored += packs.writer.stored.bytes;
    }
  }

  /** Format 2: drops what is staged (the backup failed). */
  async abandon(error: unknown): Promise<void> {
    await this.packed?.writer.abandon(error);
    await this.treePacks?.writer.abandon(error);
  }

  /**
   * Format 2: stages a tree (its plaintext, under its id) into the tree packs unless it is
   * stored or staged already; resolves once the bytes are copied. A bound function: it is
   * handed to `putFileTree`.
   */
  readonly stageTree = async (id: Buffer, hex: string, plaintext: Buffer): Promise<void> => {
    if (this.treePacks === undefined) throw new Error('trees are staged into packs only in format 2');
    const packs = this.treePacks;
    if ((await packs.find(id, hex, this.damaged)) !== undefined) return;
    await packs.store(id, hex, plaintext);
  };

  private async storeChunk(data: Uint8Array, fresh: boolean): Promise<ContentPiece> {
    // Format 2 seals whole frames in the pack writer: a chunk sealed alone would be wasted.
    return this.storeHashed(data, await this.hashBatched(data, fresh && this.packed === undefined));
  }

  /** Stores a hashed chunk unless it is known (zero: recorded without data); `data` must not change until this ends. */
  private async storeHashed(data: Uint8Array, hash: BatchedHash): Promise<ContentPiece> {
    if (hash.zero || hash.id === null) return ['zero', data.length];
    const id = hash.id;
    const hex = id.toString('hex');
    if (this.known.has(hex) && !this.damaged.has(hex)) return [hex, data.length];
    let work = this.writing.get(hex);
    if (work === undefined) {
      work = this.packed !== undefined ? this.stageNew(this.packed, id, hex, data) : this.putNew(id, hex, data, hash.sealed);
      this.writing.set(hex, work);
      work.then(() => this.known.add(hex), () => undefined).finally(() => this.writing.delete(hex));
    }
    await work;
    return [hex, data.length];
  }

  /** Format 1: puts the chunk as an object of its own unless the repository has it. */
  private async putNew(id: Buffer, hex: string, data: Uint8Array, sealedAlready: Buffer | null): Promise<void> {
    if (!this.damaged.has(hex) && (await this.repo.hasChunk(id))) return;
    const sealed = sealedAlready ?? (await this.repo.pool.seal(data, ObjectKind.chunk, id));
    await this.repo.putChunk(id, sealed);
    this.figures.bytesNew += data.length;
    this.figures.bytesStored += sealed.length;
  }

  /** Format 2: stages the chunk into the run's packs unless stored or staged already (resolves once `data` is copied). */
  private async stageNew(packed: PackedChunks, id: Buffer, hex: string, data: Uint8Array): Promise<void> {
    if ((await packed.find(id, hex, this.damaged)) !== undefined) return;
    const { stored } = await packed.store(id, hex, data);
    if (stored) this.figures.bytesNew += data.length;
  }

  /** Hashes (and seals, with `seal`) `data` in the next batch to leave. */
  private hashBatched(data: Uint8Array, seal: boolean): Promise<BatchedHash> {
    return new Promise<BatchedHash>((resolve, reject) => {
      this.batch.push({ data, seal, resolve, reject });
      this.scheduleBatch();
    });
  }

  /**
   * A batch leaves at the end of this turn of the event loop when fewer than two tasks per
   * thread are on the pool; otherwise it grows until one comes back. So the workers always
   * have a task queued, and while they are the bottleneck the main thread posts fewer,
   * larger tasks (each round trip costs it the same whatever the task holds).
   */
  private scheduleBatch(): void {
    if (this.sendScheduled || this.batch.length === 0 || this.tasksOnPool >= 2 * this.repo.pool.threads) return;
    this.sendScheduled = true;
    setImmediate(() => {
      this.sendScheduled = false;
      this.sendBatch();
    });
  }

  private sendBatch(): void {
    const free = 2 * this.repo.pool.threads - this.tasksOnPool;
    if (free <= 0 || this.batch.length === 0) return;
    const waiting = this.batch;
    this.batch = [];
    const perTask = Math.ceil(waiting.length / Math.min(free, this.repo.pool.threads));
    for (let start = 0; start < waiting.length; start += perTask) {
      const group = waiting.slice(start, start + perTask);
      this.tasksOnPool++;
      this.repo.pool
        .hashSealMany(group.map((w) => ({ data: w.data, kind: ObjectKind.chunk, seal: w.seal })))
        .then(
          (results) => group.forEach((w, i) => {
            const result = results[i];
            if (result === undefined) w.reject(new Error('codec worker answered fewer chunks than it was given'));
            else w.resolve(result);
          }),
          (error: unknown) => {
            for (const w of group) w.reject(error);
          },
        )
        .finally(() => {
          this.tasksOnPool--;
          this.scheduleBatch();
        });
    }
  }
}

/** A chunk's hash from a batch, sealed when asked. */
type BatchedHash = { zero: boolean; id: Buffer | null; sealed: Buffer | null };
