import { forEachLimited } from '../concurrency/index.js';
import { CofferError, isCofferError } from '../errors/index.js';
import { readRange } from './backend/read-range.js';
import { frameName } from './frame-reader.js';
import { FrameSlot } from './frame-slot.js';
import { packKey } from './layout.js';
import { PACK_DEFAULTS } from './pack-writer.js';
import type { Repository } from './repository.js';

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
  /** Spans read and opened at once (default: threads + 1, so a read overlaps both workers). */
  spansInFlight?: number;
  /** At most this many frames per span (default 4 with slots: 4 × 2 MiB of plaintext; 16 without). */
  framesPerSpan?: number;
  signal?: AbortSignal;
}

/** Stored bytes of one span at most: an 8 MiB pack is read in one piece. */
const SPAN_BYTES = 8 * 1024 * 1024;

/**
 * Reads many frames of a format 2 repository, each once, in the order they lie in their packs:
 * frames that follow each other in one pack (a sequential backup wrote them so) are read as one
 * span with one ranged read, up to {@link SPAN_BYTES} and `framesPerSpan` frames, and opened
 * on one worker in one task (CodecPool.openFrames). With `keep`, each frame of a span is
 * decompressed straight into a slot of shared memory that stays lent to `use` until the promise
 * it returns settles; the slots are a fixed set (`spansInFlight × framesPerSpan`), so memory is
 * bounded by `spansInFlight × (SPAN_BYTES + framesPerSpan × slot)` whatever the number of
 * frames. `use` gets every frame exactly once, with its opened form or the `E_MISSING_OBJECT`/
 * `E_CORRUPT_OBJECT` error it failed with (a pack shorter than a frame's end is
 * `E_CORRUPT_OBJECT`; a span that cannot be read is retried frame by frame, so only the
 * frames really gone fail); other errors, and errors of `use`, stop the read.
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
  const inFlight = Math.max(1, options.spansInFlight ?? repo.pool.threads + 1);
  const freeSlots: Buffer[][] = [];
  if (keep) {
    const slotBytes = FrameSlot.capacity(PACK_DEFAULTS.blocksPerFrame, PACK_DEFAULTS.framePlaintext, repo.config.blockSize);
    for (let i = 0; i < Math.min(inFlight, spans.length); i++) freeSlots.push(Array.from({ length: framesPerSpan }, () => Buffer.from(new SharedArrayBuffer(slotBytes))));
  }
  await forEachLimited(spans, inFlight, async (span) => {
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'read of frames interrupted');
    const slots = keep ? freeSlots.pop() : undefined;
    if (keep && slots === undefined) throw new Error('no free slots for a span'); // forEachLimited runs at most inFlight spans
    try {
      await openSpan(repo, span, options.rehash, slots, use);
    } finally {
      if (slots !== undefined) freeSlots.push(slots);
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

async function openSpan<F extends FrameToRead>(
  repo: Repository,
  span: F[],
  rehash: boolean,
  slots: Buffer[] | undefined,
  use: (frame: F, opened: OpenedSpanFrame | CofferError) => Promise<void> | void,
): Promise<void> {
  const first = span[0] as F;
  const last = span[span.length - 1] as F;
  const start = first.frameOffset;
  let blob: Buffer;
  try {
    blob = await readRange(repo.backend, packKey(first.pack.toString('hex')), start, last.frameOffset + last.frameLength - start);
  } catch (error) {
    if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
    if (span.length > 1) {
      // Which frames are gone: each alone (a pack cut short loses only its last frames).
      for (const frame of span) await openSpan(repo, [frame], rehash, slots, use);
      return;
    }
    await use(first, error);
    return;
  }
  const layout = span.map((frame) => ({ offset: frame.frameOffset - start, length: frame.frameLength, name: frameName(frame) }));
  const into = slots?.slice(0, span.length);
  const results = await repo.pool.openFrames(blob, layout, { rehash, ...(into === undefined ? {} : { into }) });
  await Promise.all(
    span.map((frame, i) => {
      const result = results[i];
      if (result === undefined) throw new Error('codec worker answered fewer frames than it was given');
      if (result instanceof CofferError) return use(frame, result);
      const slot = into?.[i];
      return use(frame, { plaintext: slot === undefined ? null : slot.subarray(0, result.length), table: result.table });
    }),
  );
}
