import { forEachLimited, SharedBufferPool, Slots } from '../concurrency/index.js';
import { CofferError, isCofferError } from '../errors/index.js';
import { readRange } from './backend/read-range.js';
import { frameName } from './frame-reader.js';
import { FrameSlot } from './frame-slot.js';
import { packKey } from './layout.js';
import { PACK_DEFAULTS } from './pack-writer.js';
import type { Repository } from './repository.js';
import { copyBytes, sharedMemory } from '../native/index.js';

/** A frame to read: where its envelope lies in its pack. */
export interface FrameToRead {
  pack: Buffer;
  frameOffset: number;
  frameLength: number;
}

/** A frame opened: its plaintext (in the slot lent for it, when asked to keep it) and its table. */
export interface OpenedSpanFrame {
  plaintext: Buffer | null;
  table: { id: Buffer; offset: number; length: number }[];
}

/**
 * How a remote store is read (S3, a repository server): each request waits a round trip, so
 * many are kept in flight, and each covers as much of a pack as is wanted, so fewer are made.
 * Spans of one pack are joined into one ranged read across gaps of at most `gapBytes` (read and
 * dropped: cheaper than another request) up to `maxBytes`; at most `inFlight` reads and
 * `bytesInFlight` bytes of them are fetched and not yet opened at once. Opening stays bounded
 * by the slots (`spansInFlight`): a read's spans wait for free slots, its bytes are held until
 * the last of them is opened.
 */
export interface RemoteReads {
  inFlight: number;
  bytesInFlight: number;
  gapBytes: number;
  maxBytes: number;
}

/** Options of {@link readFrameSpans}. */
export interface FrameSpanOptions {
  /** Recompute every chunk's id from its plaintext (verify). */
  rehash: boolean;
  /**
   * Keep each frame's plaintext for `use` in a slot of shared memory (restore; a slot holds a
   * frame of the default size, as FrameReader's do: a bigger frame fails as corrupt, and its
   * reader falls back to FrameReader); otherwise only the tables are answered and the
   * plaintext dropped (verify).
   */
  keep: boolean;
  /** Spans opened at once (default: threads + 1, so a read overlaps both workers). */
  spansInFlight?: number;
  /** At most this many frames per span (default 4 with slots: 4 × 2 MiB of plaintext; 16 without). */
  framesPerSpan?: number;
  /** Reads of a remote store ({@link RemoteReads}); by default each span is one read, `spansInFlight` at once. */
  reads?: RemoteReads;
  /**
   * Packs known missing (a read of them failed, or a prune removed them, moved-chunks.ts): a
   * read of such a pack is not made, its frames go to `use` with `E_MISSING_OBJECT`. Asked
   * (and awaited) just before each read, so a pack found missing by one read is not asked
   * again by the next.
   */
  gone?: (pack: Buffer) => boolean | Promise<boolean>;
  signal?: AbortSignal;
}

/** Buffers of {@link RemoteReads.maxBytes} that reads of several spans are spread over (one being filled, one opened). */
const SPREAD_BUFFERS = 2;

/** Stored bytes of one span at most: an 8 MiB pack is read in one piece. */
const SPAN_BYTES = 8 * 1024 * 1024;

/**
 * Reads many frames of a format 2 repository, each once, in the order they lie in their packs:
 * frames that follow each other in one pack (a sequential backup wrote them so) are a span,
 * up to {@link SPAN_BYTES} and `framesPerSpan` frames, opened on one worker in one task
 * (CodecPool.openFrames). A span is one ranged read, straight into one of a fixed set of
 * shared buffers (one per read in flight), or with `reads` (a remote store) several spans of a
 * pack are one read ({@link RemoteReads}), copied into shared memory; either way each span
 * goes to a worker without a copy. With `keep`, each frame of a span is
 * decompressed straight into a slot of shared memory that stays lent to `use` until the promise
 * it returns settles; the slots are a fixed set (`spansInFlight × framesPerSpan`), so memory is
 * bounded by `spansInFlight × (SPAN_BYTES + framesPerSpan × slot)` (plus `reads.bytesInFlight`)
 * whatever the number of frames. `use` gets every frame exactly once, with its opened form or
 * the `E_MISSING_OBJECT`/`E_CORRUPT_OBJECT` error it failed with (a pack shorter than a frame's
 * end is `E_CORRUPT_OBJECT`; a read that fails so is retried span by span, then frame by frame,
 * so only the frames really gone fail; a pack that is not there at all, `E_MISSING_OBJECT`, fails
 * all the read's frames at once); other errors, and errors of `use`, stop the read.
 */
export async function readFrameSpans<F extends FrameToRead>(
  repo: Repository,
  frames: readonly F[],
  options: FrameSpanOptions,
  use: (frame: F, opened: OpenedSpanFrame | CofferError) => Promise<void> | void,
): Promise<void> {
  const keep = options.keep;
  const framesPerSpan = Math.max(1, options.framesPerSpan ?? (keep ? 4 : 16));
  const spans = planSpans(frames, framesPerSpan);
  const opening = Math.max(1, options.spansInFlight ?? repo.pool.threads + 1);
  const freeSlots: Buffer[][] = [];
  if (keep) {
    const slotBytes = FrameSlot.capacity(PACK_DEFAULTS.blocksPerFrame, PACK_DEFAULTS.framePlaintext, repo.config.blockSize);
    for (let i = 0; i < Math.min(opening, spans.length); i++) freeSlots.push(Array.from({ length: framesPerSpan }, () => Buffer.from(sharedMemory(slotBytes))));
  }
  const reader: SpanReader<F> = {
    repo,
    rehash: options.rehash,
    opening: new Slots(Math.min(opening, Math.max(1, spans.length))),
    freeSlots: keep ? freeSlots : undefined,
    use,
    ...(options.gone ? { gone: options.gone } : {}),
  };
  const remote = options.reads;
  const reads = remote === undefined ? spans.map((span) => [span]) : planReads(spans, remote);
  if (remote !== undefined && reads.some((read) => read.length > 1)) reader.spread = new SharedBufferPool(remote.maxBytes, SPREAD_BUFFERS);
  const lanes = Math.max(1, Math.min(remote?.inFlight ?? opening, reads.length));
  // Reads of one span land in a fixed set of shared buffers, one per lane (a lane never waits for one).
  if (remote === undefined) reader.landing = new SharedBufferPool(SPAN_BYTES, lanes);
  const fetched = new ByteBudget(remote?.bytesInFlight ?? Number.POSITIVE_INFINITY);
  await forEachLimited(reads, lanes, async (read) => {
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'read of frames interrupted');
    const bytes = endOf(read) - startOf(read);
    await fetched.acquire(bytes);
    // Its bytes count until its spans are opened (then the slots hold what waits to be used).
    let held = true;
    const opened = () => {
      if (held) fetched.release(bytes);
      held = false;
    };
    try {
      await openRead(reader, read, opened);
    } finally {
      opened();
    }
  });
}

/** Frames sorted by pack and offset, cut into spans of frames that follow each other in one pack. */
function planSpans<F extends FrameToRead>(frames: readonly F[], framesPerSpan: number): F[][] {
  const sorted = [...frames].sort((a, b) => Buffer.compare(a.pack, b.pack) || a.frameOffset - b.frameOffset);
  const spans: F[][] = [];
  let current: F[] = [];
  let end = -1;
  let start = 0;
  for (const frame of sorted) {
    const last = current.at(-1);
    const joins = last !== undefined && last.pack.equals(frame.pack) && frame.frameOffset === end && current.length < framesPerSpan && end + frame.frameLength - start <= SPAN_BYTES;
    if (!joins) {
      if (current.length > 0) spans.push(current);
      current = [];
      start = frame.frameOffset;
    }
    current.push(frame);
    end = frame.frameOffset + frame.frameLength;
  }
  if (current.length > 0) spans.push(current);
  return spans;
}

/** Spans (in pack order) joined into reads of one pack across gaps of at most `gapBytes`, up to `maxBytes` each. */
export function planReads<F extends FrameToRead>(spans: readonly F[][], limits: { gapBytes: number; maxBytes: number }): F[][][] {
  const reads: F[][][] = [];
  let current: F[][] = [];
  for (const span of spans) {
    const previous = current.at(-1);
    const joins =
      previous !== undefined &&
      (previous[0] as F).pack.equals((span[0] as F).pack) &&
      startOf([span]) - endOf([previous]) <= limits.gapBytes &&
      endOf([span]) - startOf(current) <= limits.maxBytes;
    if (!joins) {
      if (current.length > 0) reads.push(current);
      current = [];
    }
    current.push(span);
  }
  if (current.length > 0) reads.push(current);
  return reads;
}

/** Where the first frame of a read (its spans) starts in its pack. */
function startOf(read: readonly FrameToRead[][]): number {
  return (read[0]?.[0] as FrameToRead).frameOffset;
}

/** Where the last frame of a read ends in its pack. */
function endOf(read: readonly FrameToRead[][]): number {
  const last = read.at(-1)?.at(-1) as FrameToRead;
  return last.frameOffset + last.frameLength;
}

/** What every read of one {@link readFrameSpans} call shares. */
interface SpanReader<F extends FrameToRead> {
  repo: Repository;
  rehash: boolean;
  /** Spans being opened (each holding a set of slots when `freeSlots` is set). */
  opening: Slots;
  freeSlots: Buffer[][] | undefined;
  /** Shared memory a read of several spans is copied to, so that each span's view crosses to a worker without a copy. */
  spread?: SharedBufferPool;
  /**
   * Shared memory a local read of one span is read straight into (a span bigger than
   * {@link SPAN_BYTES}, one big frame, gets a buffer of its own). A fixed set reused, not a
   * fresh buffer per span moved to a worker: such a buffer lives until that worker's garbage
   * collection, so they piled up (a restore's peak RSS, issue #2's 256 MiB row).
   */
  landing?: SharedBufferPool;
  use: (frame: F, opened: OpenedSpanFrame | CofferError) => Promise<void> | void;
  gone?: (pack: Buffer) => boolean | Promise<boolean>;
}

/** Reads the range of a read's spans with one request, then opens each span as slots free up; `opened` once all are. */
async function openRead<F extends FrameToRead>(reader: SpanReader<F>, read: F[][], opened: () => void): Promise<void> {
  const first = read[0]?.[0] as F;
  const start = startOf(read);
  const key = packKey(first.pack.toString('hex'));
  const length = endOf(read) - start;
  const landing = read.length === 1 && length <= SPAN_BYTES ? await reader.landing?.acquire() : undefined;
  let released = false;
  const blobOpened = () => {
    if (released) return;
    released = true;
    if (landing !== undefined) reader.landing?.release(landing);
    opened();
  };
  let blob: Buffer;
  try {
    if ((await reader.gone?.(first.pack)) === true) throw new CofferError('E_MISSING_OBJECT', `object ${key} is missing (found gone before)`, { subject: { object: key } });
    blob = await readRange(reader.repo.backend, key, start, length, landing);
  } catch (error) {
    blobOpened();
    if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
    const span = read[0] as F[];
    if ((read.length === 1 && span.length === 1) || error.code === 'E_MISSING_OBJECT') {
      // (A missing pack is missing whole: asking for its parts would only fail again.)
      for (const frame of read.flat()) await reader.use(frame, error);
      return;
    }
    // Which frames are gone: each span alone, then each frame (a pack cut short loses only its last frames).
    const smaller = read.length > 1 ? read.map((s) => [s]) : span.map((frame) => [[frame]]);
    for (const part of smaller) await openRead(reader, part, () => undefined);
    return;
  }
  if (read.length === 1) {
    try {
      await openSpan(reader, read[0] as F[], blob, blobOpened); // shared (a landing buffer), or its own moved to the worker
    } finally {
      blobOpened();
    }
    return;
  }
  // Spread over shared memory, so several workers take views of it at once. A fixed set of
  // buffers reused, not one per read: a worker holds a view of a shared buffer until its own
  // garbage collection, so fresh ones pile up (a restore's RSS +50-70 MiB).
  const spread = reader.spread as SharedBufferPool;
  const shared = await spread.acquire();
  copyBytes(shared, blob);
  const whole = Buffer.from(shared.buffer, shared.byteOffset, blob.length);
  let left = read.length;
  const spanOpened = () => {
    if (--left > 0) return;
    spread.release(shared);
    opened();
  };
  await Promise.all(read.map((span) => openSpan(reader, span, whole.subarray(startOf([span]) - start, endOf([span]) - start), spanOpened)));
}

/**
 * Opens the frames of one span (its stored bytes in `blob`) on a worker, calls `opened` (exactly
 * once: `blob` is no longer needed), and hands each frame to `use`.
 */
async function openSpan<F extends FrameToRead>(reader: SpanReader<F>, span: F[], blob: Buffer, opened: () => void): Promise<void> {
  await reader.opening.acquire();
  const slots = reader.freeSlots?.pop();
  try {
    const into = slots?.slice(0, span.length);
    let results: Awaited<ReturnType<Repository['pool']['openFrames']>>;
    try {
      if (reader.freeSlots !== undefined && slots === undefined) throw new Error('no free slots for a span'); // as many slot sets as openings
      const start = startOf([span]);
      const layout = span.map((frame) => ({ offset: frame.frameOffset - start, length: frame.frameLength, name: frameName(frame) }));
      results = await reader.repo.pool.openFrames(blob, layout, { rehash: reader.rehash, ...(into === undefined ? {} : { into }) });
    } finally {
      opened();
    }
    await Promise.all(
      span.map((frame, i) => {
        const result = results[i];
        if (result === undefined) throw new Error('codec worker answered fewer frames than it was given');
        if (result instanceof CofferError) return reader.use(frame, result);
        const slot = into?.[i];
        return reader.use(frame, { plaintext: slot === undefined ? null : slot.subarray(0, result.length), table: result.table });
      }),
    );
  } finally {
    if (slots !== undefined) reader.freeSlots?.push(slots);
    reader.opening.release();
  }
}

/** A budget of bytes: `acquire` waits (in order) until that many are free; more than the whole budget waits for all of it. */
class ByteBudget {
  private readonly waiting: { bytes: number; resolve: () => void }[] = [];
  private used = 0;

  constructor(private readonly total: number) {}

  async acquire(bytes: number): Promise<void> {
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.used += bytes;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push({ bytes, resolve }));
  }

  release(bytes: number): void {
    this.used -= bytes;
    for (let next = this.waiting[0]; next !== undefined && this.fits(next.bytes); next = this.waiting[0]) {
      this.waiting.shift();
      this.used += next.bytes;
      next.resolve();
    }
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.total;
  }
}
