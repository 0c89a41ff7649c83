import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { CofferError, type ErrorCode } from '../errors/index.js';
import type { CodecSettings, ObjectId } from './codec.js';
import type { ChunkSizes } from './fastcdc.js';
import type { ObjectKind } from './format/envelope.js';
import { TurnBatcher } from './turn-batcher.js';
import { clearKeySlot, KEY_SLOT_BYTES, writeKeySlot, type CodecThreadData } from './codec-thread-data.js';
import type { MasterKey } from './keys/master-key.js';

/** A task for a codec worker. Buffers should live in SharedArrayBuffers to avoid copies. */
export type CodecTask =
  | { op: 'hash'; data: Uint8Array }
  | { op: 'hashMany'; data: Uint8Array; lengths: number[] }
  | { op: 'fingerprintHashMany'; data: Uint8Array; lengths: number[]; key: Uint8Array; indexes: number[]; expected: Uint8Array; older: Uint8Array | undefined }
  | { op: 'seal'; data: Uint8Array; kind: number; id: Uint8Array }
  | { op: 'sealMany'; data: Uint8Array; objects: { length: number; kind: number; id: Uint8Array }[] }
  | { op: 'open'; data: Uint8Array; kind: number; name: string; id: Uint8Array; rehash: boolean; into: Uint8Array | 'discard' | undefined }
  | { op: 'checkMany'; objects: { data: Uint8Array; kind: number; name: string; id: Uint8Array }[] }
  | { op: 'openMany'; objects: OpenIntoTask[] }
  | { op: 'hashSealMany'; objects: { data: Uint8Array; kind: number; seal: boolean }[] }
  | { op: 'cutHashSeal'; data: Uint8Array; sizes: ChunkSizes; ended: boolean; seal: boolean }
  | { op: 'sealFrame'; slot: Uint8Array; length: number }
  | { op: 'openFrame'; data: Uint8Array; name: string; rehash: boolean; keep: boolean; into: Uint8Array | undefined }
  | { op: 'openFrames'; data: Uint8Array; frames: { offset: number; length: number; name: string }[]; rehash: boolean; into: Uint8Array[] | undefined }
  | { op: 'sha256'; data: Uint8Array }
  | { op: 'load' };

/** One object of an `openMany` task: opened into `into` (shared memory). */
export interface OpenIntoTask {
  data: Uint8Array;
  kind: number;
  name: string;
  id: Uint8Array;
  rehash: boolean;
  into: Uint8Array;
}

/** A problem with one object, as it crosses back from a worker. */
type WorkerProblem = { code: ErrorCode; message: string; object: string | null };

/**
 * A frame's table as a worker answers it: every chunk id in one buffer (`ids`), and for each
 * chunk three numbers in `places`: its id's length, its offset and its length in the frame.
 */
export interface WireTable {
  ids: Uint8Array;
  places: number[];
}

/** What a codec worker answers. */
export type CodecResult =
  | { op: 'hash'; zero: boolean; id: Uint8Array | null }
  | { op: 'hashMany'; hashes: { zero: boolean; id: Uint8Array | null }[] }
  | { op: 'fingerprintHashMany'; same: boolean[]; older: boolean[]; hashes: ({ zero: boolean; id: Uint8Array | null } | null)[]; tags: Uint8Array }
  | { op: 'seal'; sealed: Uint8Array }
  | { op: 'sealMany'; sealed: Uint8Array[] }
  | { op: 'open'; length: number; plaintext: Uint8Array | null }
  | { op: 'checkMany'; problems: (WorkerProblem | null)[] }
  | { op: 'openMany'; results: ({ length: number } | WorkerProblem)[] }
  | { op: 'hashSealMany'; results: { zero: boolean; id: Uint8Array | null; sealed: Uint8Array | null }[] }
  | { op: 'cutHashSeal'; lengths: number[]; results: { zero: boolean; id: Uint8Array | null; sealed: Uint8Array | null }[] }
  | { op: 'sealFrame'; length: number }
  | { op: 'openFrame'; plaintext: Uint8Array | null; length: number; table: WireTable }
  | { op: 'openFrames'; results: ({ length: number; table: WireTable } | WorkerProblem)[] }
  | { op: 'sha256'; digest: Uint8Array }
  | { op: 'load' }
  | { op: 'error'; code: ErrorCode; message: string; object: string | null };

/** What hashing a block found. */
export interface BlockHash {
  /** The block is all zeros: nothing is stored for it. */
  zero: boolean;
  /** The block's object id (null for a zero block). */
  id: ObjectId | null;
}

/**
 * Tasks handed to a thread at once: the next one waits in the thread's own queue, so the thread
 * starts it the moment the last ends instead of after a round trip through the main thread's
 * event loop — which a verify's index walk, or a restore's writes, keep busy for milliseconds at
 * a time (with one, verify's codec threads idled ~half the time while the walk ran). Interleaved
 * runs on the bench repository (2026-11-27, 4 each): verify --read-data 2.75 → 2.61 s
 * (medians), restore 2.92 → 2.66 s, a hashed incremental 1.44 → 1.41 s. The least busy thread
 * still gets each task first (piscina's default balancer).
 */
const TASKS_QUEUED_PER_THREAD = 2;

/**
 * The one pool of worker threads that does Coffer's CPU work on every core: hashing,
 * compression, encryption, and back. Buffers passed in SharedArrayBuffer views cross to the
 * workers without a copy; results are small (ids) or copied once (sealed objects).
 *
 * Threads default to the number of cores: the main thread only moves buffers and waits on
 * I/O, so it needs no core of its own.
 */
export class CodecPool {
  private workers: Piscina<CodecTask, CodecResult> | undefined;
  private closed = false;
  readonly threads: number;

  /** The master key as the threads read it (codec-thread-data.ts). */
  private readonly keySlot = new SharedArrayBuffer(KEY_SLOT_BYTES);
  private readonly threadData: CodecThreadData;

  /**
   * `settings.masterKey` 'later': an encrypted repository whose key is still being derived;
   * the threads may be started ({@link start}), and {@link giveKey} must come before any task.
   */
  constructor(
    settings: Omit<CodecSettings, 'masterKey'> & { masterKey: CodecSettings['masterKey'] | 'later' },
    options: { threads?: number } = {},
  ) {
    this.threadData = { compressionLevel: settings.compressionLevel, encrypted: settings.masterKey !== null, keySlot: this.keySlot };
    if (settings.masterKey !== null && settings.masterKey !== 'later') writeKeySlot(this.keySlot, settings.masterKey);
    this.threads = Math.max(1, options.threads ?? availableParallelism());
  }

  /**
   * Starts the threads now rather than at the first task, and has each load the codec's code
   * (~0.1 CPU-s a thread, otherwise paid by its first task): `coffer serve` does, so that its
   * first NBD read does not wait for them, and `verify --read-data`, while it reads the
   * snapshots' indexes.
   */
  start(): void {
    if (this.workers !== undefined) return; // started: loading, or loaded
    const pool = this.pool;
    // One task per thread: piscina gives a task to an idle thread first.
    for (let i = 0; i < this.threads; i++) void pool.run({ op: 'load' }).catch(() => undefined); // a failure shows again at the first real task
  }

  /** Whether the threads have been started. */
  get started(): boolean {
    return this.workers !== undefined;
  }

  /**
   * The threads, started by the first task (or {@link start}): a command that hashes, seals
   * and opens nothing, such as an incremental backup of an unchanged VM, never pays their
   * start (each loads its modules: about 0.09 CPU-s a thread, bench/README.md).
   */
  private get pool(): Piscina<CodecTask, CodecResult> {
    if (this.closed) throw new Error('the codec pool is closed');
    this.workers ??= new Piscina({
      filename: new URL('./codec-worker-entry.cjs', import.meta.url).href,
      workerData: this.threadData,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: 60_000,
      concurrentTasksPerWorker: TASKS_QUEUED_PER_THREAD,
    });
    return this.workers;
  }

  /**
   * Zero check and object id of a data block. Blocks asked for in one turn of the event loop
   * leave together, copied once into one buffer that moves to the worker, as `hashMany` tasks
   * (one per thread): a sync between repositories with different keys hashes every chunk it
   * reads, and one task per chunk cost its main thread more than the chunk itself (a task's
   * round trip, and posting a small Buffer clones the whole 8 KiB pool it is a view into:
   * 100,000 small files, --cpu-prof, 2026-11-27). A block in shared memory leaves alone,
   * without a copy.
   */
  async hash(data: Uint8Array): Promise<BlockHash> {
    if (data.buffer instanceof SharedArrayBuffer) {
      const result = expect(await this.pool.run({ op: 'hash', data }), 'hash');
      return { zero: result.zero, id: result.id === null ? null : toBuffer(result.id) };
    }
    return this.gatheredHashes.add(data);
  }

  private readonly gatheredHashes = new TurnBatcher<Uint8Array, BlockHash>(
    () => this.threads,
    async (blocks) => {
      const data = concatenated(blocks);
      const result = expect(await this.pool.run({ op: 'hashMany', data, lengths: blocks.map((b) => b.length) }, { transferList: [data.buffer as ArrayBuffer] }), 'hashMany');
      return result.hashes.map((hash) => ({ zero: hash.zero, id: hash.id === null ? null : toBuffer(hash.id) }));
    },
  );

  /**
   * {@link seal}, gathered as {@link hash} is: the objects sealed in one turn of the event
   * loop leave together (copied once into one buffer that moves to the worker), one
   * `sealMany` task per thread. For many small objects, such as a sync's chunks into a
   * format 1 repository.
   */
  sealGathered(data: Uint8Array, kind: ObjectKind, id: ObjectId): Promise<Buffer> {
    return this.gatheredSeals.add({ data, kind, id });
  }

  private readonly gatheredSeals = new TurnBatcher<{ data: Uint8Array; kind: ObjectKind; id: ObjectId }, Buffer>(
    () => this.threads,
    async (objects) => {
      const data = concatenated(objects.map((o) => o.data));
      const task: CodecTask = { op: 'sealMany', data, objects: objects.map((o) => ({ length: o.data.length, kind: o.kind, id: standalone(o.id) })) };
      return expect(await this.pool.run(task, { transferList: [data.buffer as ArrayBuffer] }), 'sealMany').sealed.map(toBuffer);
    },
  );

  /**
   * Checks a stored object as {@link checkMany} does (opened with `rehash`, the plaintext
   * dropped), gathered as {@link hash} is: resolves when intact, rejects with the
   * `E_CORRUPT_OBJECT` it failed with. `blob` is consumed.
   */
  checkGathered(object: { blob: Uint8Array; kind: ObjectKind; name: string; id: ObjectId }): Promise<undefined> {
    return this.gatheredChecks.add(object);
  }

  private readonly gatheredChecks = new TurnBatcher<{ blob: Uint8Array; kind: ObjectKind; name: string; id: ObjectId }, undefined>(
    () => this.threads,
    async (objects) => (await this.checkMany(objects)).map((problem) => problem ?? undefined),
  );

  /**
   * Zero check and id of several consecutive blocks in one task (`lengths` cut `data` in
   * order): one round trip to a worker instead of one per block.
   */
  async hashMany(data: Uint8Array, lengths: number[]): Promise<BlockHash[]> {
    const result = expect(await this.pool.run({ op: 'hashMany', data, lengths }), 'hashMany');
    return result.hashes.map((hash) => ({ zero: hash.zero, id: hash.id === null ? null : toBuffer(hash.id) }));
  }

  /**
   * {@link hashMany} for blocks whose fingerprints at the parent snapshot are known
   * (backup/block-fingerprints.ts): each block's fingerprint (a Poly1305 tag under `key`, the
   * block's index as nonce: `FINGERPRINT_BYTES` each) is computed, and a block whose
   * fingerprint equals its `expected` one (all zero: none known) is `same`, neither
   * zero-checked nor hashed: about 12 GB/s per core against 1.9 for SHA-256 on this
   * project's machines. Failing that, one equal to its `older` one (the parent's parent's)
   * is `older`, unhashed too. Answers every block's new fingerprint in `tags`.
   */
  async fingerprintHashMany(
    data: Uint8Array,
    lengths: number[],
    fingerprints: { key: Uint8Array; indexes: number[]; expected: Uint8Array; older?: Uint8Array | undefined },
  ): Promise<{ same: boolean[]; older: boolean[]; hashes: (BlockHash | null)[]; tags: Buffer }> {
    const result = expect(await this.pool.run({ op: 'fingerprintHashMany', data, lengths, ...fingerprints, older: fingerprints.older }), 'fingerprintHashMany');
    return {
      same: result.same,
      older: result.older,
      hashes: result.hashes.map((hash) => (hash === null ? null : { zero: hash.zero, id: hash.id === null ? null : toBuffer(hash.id) })),
      tags: toBuffer(result.tags),
    };
  }

  /**
   * Hashes several blocks in one worker task, and seals those marked `seal` (unless all
   * zero) with the id just computed: what a file backup does with the chunks of a new file,
   * whose chunks are almost always new. One round trip for many chunks instead of two per
   * chunk (hash, then seal): a task's round trip cost the file backup's main thread more
   * than reading a small file (--cpu-prof, 2026-11-26). `sealed` is null when not asked for.
   */
  async hashSealMany(objects: { data: Uint8Array; kind: ObjectKind; seal: boolean }[]): Promise<(BlockHash & { sealed: Buffer | null })[]> {
    const result = expect(await this.pool.run({ op: 'hashSealMany', objects }), 'hashSealMany');
    return result.results.map((r) => ({ zero: r.zero, id: r.id === null ? null : toBuffer(r.id), sealed: r.sealed === null ? null : toBuffer(r.sealed) }));
  }

  /**
   * Cuts `data` (a stream's window, best in shared memory) into content-defined chunks
   * (fastcdc.ts: every whole chunk, and the rest too when the stream `ended`), then hashes
   * each, and seals it too with `seal`, as {@link hashSealMany} does: the cutting is as much
   * CPU as the hashing, and on the main thread it held up a file backup's walk while the
   * workers idled. Answers the chunks' lengths in order (their sum: the bytes consumed).
   */
  async cutHashSeal(data: Uint8Array, sizes: ChunkSizes, ended: boolean, seal: boolean): Promise<{ lengths: number[]; results: (BlockHash & { sealed: Buffer | null })[] }> {
    const result = expect(await this.pool.run({ op: 'cutHashSeal', data, sizes: { min: sizes.min, avg: sizes.avg, max: sizes.max }, ended, seal }), 'cutHashSeal');
    return { lengths: result.lengths, results: result.results.map((r) => ({ zero: r.zero, id: r.id === null ? null : toBuffer(r.id), sealed: r.sealed === null ? null : toBuffer(r.sealed) })) };
  }

  /** The stored form of `data`, whose id is `id`. */
  async seal(data: Uint8Array, kind: ObjectKind, id: ObjectId): Promise<Buffer> {
    return toBuffer(expect(await this.pool.run({ op: 'seal', data, kind, id: standalone(id) }), 'seal').sealed);
  }

  /**
   * The plaintext of the object stored under `id` (see {@link ObjectCodec.open} for
   * `rehash`). With `into` (a shared buffer), the plaintext is written there and its length
   * returned; with `'discard'` it is only checked (verify), so nothing crosses back;
   * otherwise it is returned. `blob` is consumed: it may be moved to the worker thread.
   */
  async open(
    blob: Uint8Array,
    options: { kind: ObjectKind; name: string; id: ObjectId; rehash: boolean; into?: Uint8Array | 'discard' },
  ): Promise<{ length: number; plaintext: Buffer | null }> {
    const into = options.into;
    if (into instanceof Uint8Array && into.buffer instanceof SharedArrayBuffer) {
      const object = { data: blob, kind: options.kind, name: options.name, id: standalone(options.id), rehash: options.rehash, into };
      return { length: await this.gatheredOpens.add(object), plaintext: null };
    }
    const task: CodecTask = { op: 'open', data: blob, kind: options.kind, name: options.name, id: standalone(options.id), rehash: options.rehash, into };
    // A blob that owns its whole ArrayBuffer (as a file just read does) moves to the worker
    // instead of being copied; the caller must not use it afterwards.
    const result = expect(await this.pool.run(task, owns(blob) ? { transferList: [blob.buffer as ArrayBuffer] } : {}), 'open');
    return { length: result.length, plaintext: result.plaintext === null ? null : toBuffer(result.plaintext) };
  }

  /**
   * Checks several stored objects in one worker task, as verify does: each is opened with
   * `rehash` (authenticated, decompressed, its id recomputed from the plaintext) and the
   * plaintext dropped. Answers, in order, null for an intact object or the `E_CORRUPT_OBJECT`
   * error it failed with. One task for many objects: a task's round trip to a worker
   * (posting, waking, answering) cost as much CPU as AES-GCM on a chunk (verify's
   * --cpu-prof, 2026-11-26). The blobs are consumed (moved to the worker when they own
   * their memory).
   */
  async checkMany(objects: { blob: Uint8Array; kind: ObjectKind; name: string; id: ObjectId }[]): Promise<(CofferError | null)[]> {
    const transferList: ArrayBuffer[] = [];
    const task: CodecTask = {
      op: 'checkMany',
      objects: objects.map((o) => {
        if (owns(o.blob)) transferList.push(o.blob.buffer as ArrayBuffer);
        return { data: o.blob, kind: o.kind, name: o.name, id: standalone(o.id) };
      }),
    };
    const result = expect(await this.pool.run(task, { transferList }), 'checkMany');
    return result.problems.map((p) => (p === null ? null : errorOf(p)));
  }

  /**
   * Opens into shared memory are gathered for the rest of this turn of the event loop and
   * leave as one `openMany` task per thread: a restore's GET answers that arrive together
   * (one poll of the sockets) cost one round trip to a worker each, not one per chunk. A
   * task's round trip (posting, waking the thread, answering) cost the restore's main thread
   * ~0.3 ms, a sixth of its CPU on a loaded machine (--cpu-prof, S3 restore, 2026-11-26).
   * `setImmediate` runs right after the poll that delivered the answers: no wait is added.
   */
  private readonly gatheredOpens = new TurnBatcher<OpenIntoTask, number>(
    () => this.threads,
    async (objects) => {
      const transferList = objects.filter((object) => owns(object.data)).map((object) => object.data.buffer as ArrayBuffer);
      const { results } = expect(await this.pool.run({ op: 'openMany', objects }, { transferList }), 'openMany');
      return results.map((answer) => ('code' in answer ? errorOf(answer) : answer.length));
    },
  );

  /**
   * Seals the pack frame laid out in `slot[0, length)` (shared memory, frame-slot.ts) in
   * place, as frame-codec.ts `sealFrameInPlace`: the envelope is written from `slot[0]` and
   * its length answered. Only the slot's handle crosses to the worker, nothing is copied back.
   */
  async sealFrame(slot: Uint8Array, length: number): Promise<number> {
    if (!(slot.buffer instanceof SharedArrayBuffer)) throw new TypeError('a frame is sealed in shared memory');
    return expect(await this.pool.run({ op: 'sealFrame', slot, length }), 'sealFrame').length;
  }

  /**
   * Opens a pack frame's envelope (authenticated, decompressed, its table parsed; every chunk
   * rehashed with `rehash` or in an unencrypted repository): its plaintext (null unless
   * `keep`; with `into`, shared memory of at least the frame's size, the plaintext is written
   * there instead of crossing back) and table. `E_CORRUPT_OBJECT` when it fails. `blob` is
   * consumed.
   */
  async openFrame(
    blob: Uint8Array,
    options: { name: string; rehash: boolean; keep: boolean; into?: Uint8Array },
  ): Promise<{ plaintext: Buffer | null; length: number; table: { id: Buffer; offset: number; length: number }[] }> {
    const task: CodecTask = { op: 'openFrame', data: blob, name: options.name, rehash: options.rehash, keep: options.keep, into: options.into };
    const result = expect(await this.pool.run(task, owns(blob) ? { transferList: [blob.buffer as ArrayBuffer] } : {}), 'openFrame');
    return { plaintext: result.plaintext === null ? null : toBuffer(result.plaintext), length: result.length, table: tableFromWire(result.table) };
  }

  /**
   * Opens the frames of one span of a pack (`span` holds their envelopes, each at its
   * `offset`: one ranged read brought them all) in one worker task: one round trip for
   * several frames, and the span moves to the worker without a copy when it owns its memory.
   * Each frame as {@link openFrame}, with `into[i]` (shared memory) receiving frame i's
   * plaintext when given, else only its table answered (verify). Answers, in order, the
   * frame's plaintext length and table, or the `E_CORRUPT_OBJECT` error it failed with.
   * `span` is consumed.
   */
  async openFrames(
    span: Uint8Array,
    frames: { offset: number; length: number; name: string }[],
    options: { rehash: boolean; into?: Uint8Array[] },
  ): Promise<({ length: number; table: { id: Buffer; offset: number; length: number }[] } | CofferError)[]> {
    const task: CodecTask = { op: 'openFrames', data: span, frames, rehash: options.rehash, into: options.into };
    const result = expect(await this.pool.run(task, owns(span) ? { transferList: [span.buffer as ArrayBuffer] } : {}), 'openFrames');
    return result.results.map((r) =>
      'code' in r
        ? errorOf(r)
        : { length: r.length, table: tableFromWire(r.table) },
    );
  }

  /** SHA-256 of `data` (a pack's id), off the main thread; pass shared memory to avoid a copy. */
  async sha256(data: Uint8Array): Promise<Buffer> {
    return toBuffer(expect(await this.pool.run({ op: 'sha256', data }), 'sha256').digest);
  }

  /** The repository's key, for a pool made before it was known (see the constructor). */
  giveKey(key: MasterKey): void {
    writeKeySlot(this.keySlot, key);
  }

  /** Stops the threads; pending tasks are rejected. The key slot is zeroed. */
  async close(): Promise<void> {
    this.closed = true;
    await this.workers?.destroy();
    clearKeySlot(this.keySlot);
  }
}

/** True when `blob` is its whole (non-shared) ArrayBuffer, so that buffer can move to a worker. */
function owns(blob: Uint8Array): boolean {
  return blob.buffer instanceof ArrayBuffer && blob.byteOffset === 0 && blob.byteLength === blob.buffer.byteLength;
}

/** `parts` copied one after the other into memory of its own (so it can move to a worker, not be cloned). */
function concatenated(parts: readonly Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafeSlow(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The error a worker's answer describes, with its code and the object it names. */
function errorOf(problem: WorkerProblem): CofferError {
  return new CofferError(problem.code, problem.message, { subject: problem.object === null ? {} : { object: problem.object } });
}

function expect<K extends CodecResult['op']>(result: CodecResult, op: K): Extract<CodecResult, { op: K }> {
  if (result.op === 'error') {
    throw errorOf(result);
  }
  if (result.op !== op) throw new Error(`codec worker answered ${result.op} to ${op}`);
  return result as Extract<CodecResult, { op: K }>;
}

/**
 * An id that owns its memory. Posting a view to a worker clones its whole ArrayBuffer: an
 * entry of a 128 KiB index page cost a 128 KiB copy per task (a fifth of `coffer serve`'s
 * main thread, measured with --cpu-prof on the live benchmark); 32 bytes are copied instead.
 */
function standalone(id: ObjectId): ObjectId {
  if (id.byteOffset === 0 && id.byteLength === id.buffer.byteLength) return id;
  const own = Buffer.alloc(id.length); // not Buffer.from: small ones are views into an 8 KiB pool
  own.set(id);
  return own;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A frame's table from its wire form ({@link WireTable}): each id a view of the one buffer. */
function tableFromWire(wire: WireTable): { id: Buffer; offset: number; length: number }[] {
  const ids = toBuffer(wire.ids);
  const table: { id: Buffer; offset: number; length: number }[] = [];
  let at = 0;
  for (let i = 0; i + 2 < wire.places.length; i += 3) {
    const idLength = wire.places[i] as number;
    table.push({ id: ids.subarray(at, at + idLength), offset: wire.places[i + 1] as number, length: wire.places[i + 2] as number });
    at += idLength;
  }
  return table;
}
