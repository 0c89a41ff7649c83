import { forEachLimited, SharedBufferPool } from '../concurrency/index.js';
import { isCofferError } from '../errors/index.js';
import { readRange } from './backend/read-range.js';
import { decodeLocatedEntry } from './format/located-entry.js';
import { ChunkIndex } from './chunk-index.js';
import { frameName } from './frame-reader.js';
import { idFromKey, packKey, PACKS_PREFIX } from './layout.js';
import type { PackTrailer } from './format/pack.js';
import type { FrameReadAhead } from './frame-read-ahead.js';
import { readTrailer } from './pack-plan.js';
import type { Repository } from './repository.js';

/** A chunk verify found missing or corrupt, with why. */
export interface PackedChunkProblem {
  problem: 'missing' | 'corrupt';
  message: string;
}

/**
 * Most bytes of a pack read at once: adjacent frames of a pack (each ≤ 2 MiB stored) are read
 * as one span and opened in one worker task. With the pool's two tasks per thread in flight,
 * ≤ 16 MiB of spans live at a time, in that many shared buffers reused from span to span.
 */
export const VERIFY_SPAN_BYTES = 4 * 2 ** 20;

/** A frame to check: where it is, and the chunks (hex ids) verify asks of it. */
interface FrameToCheck {
  name: string;
  pack: string;
  offset: number;
  length: number;
  entry: Buffer;
  chunks: string[];
}

/**
 * Format 2's half of `verify --read-data`: the chunks to read (hex ids, each with the located
 * entry a snapshot names it by) are grouped by frame, and the frames of a pack into spans of
 * adjacent frames (≤ {@link VERIFY_SPAN_BYTES}). Each span is read once (one ranged read) and
 * its frames authenticated, decompressed and every chunk in them rehashed in one worker task:
 * a task's round trip cost the main thread ~0.3 ms, as much as all its other work on a frame
 * (verify's thread CPU, 2026-11-26). Each chunk asked for must be in its frame's table at the
 * place its entry says. A frame that fails names every chunk asked of it; a span that cannot
 * be read whole (a truncated pack) is checked again frame by frame. `onFrame` reports progress.
 * A chunk whose entry names a pack that is not stored (a prune repacked it, §19.7) is checked
 * at the place the index segments give in a stored pack, grouped with the rest: not one failed
 * read per frame, then one read and one decode per chunk. With `readAhead` (a full read), the
 * frames it opened are taken from it and only the others read here.
 */
export async function checkPackedChunks(
  repo: Repository,
  chunks: readonly string[],
  snapshotLocations: ReadonlyMap<string, Buffer>,
  onFrame: (chunks: number, bytes: number) => void,
  packs: readonly StoredPack[],
  readAhead?: FrameReadAhead,
): Promise<Map<string, PackedChunkProblem>> {
  const locations = await withMovedPlaces(repo, chunks, snapshotLocations, packs);
  const bad = new Map<string, PackedChunkProblem>();
  const frames = new Map<string, FrameToCheck>();
  for (const hex of chunks) {
    const entry = locations.get(hex);
    if (entry === undefined) continue;
    const location = decodeLocatedEntry(entry, `chunk ${hex}`);
    const name = frameName(location);
    let frame = frames.get(name);
    if (frame === undefined) {
      frame = { name, pack: location.pack.toString('hex'), offset: location.frameOffset, length: location.frameLength, entry, chunks: [] };
      frames.set(name, frame);
    }
    frame.chunks.push(hex);
  }
  const record = (frame: FrameToCheck, problems: readonly (PackedChunkProblem | null)[], bytes: number): void => {
    problems.forEach((problem, i) => {
      if (problem !== null) bad.set(frame.chunks[i] as string, problem);
    });
    onFrame(frame.chunks.length, bytes);
  };
  let left: Iterable<FrameToCheck> = frames.values();
  if (readAhead !== undefined) {
    // The frames the read-ahead opened (frame-read-ahead.ts) are checked as they come; the
    // rest (it could not open them, or no trailer lists them) are read below.
    const covered = new Set<string>();
    readAhead.narrow(new Map([...frames].map(([name, frame]) => [name, frame.length])), (opened) => {
      const frame = frames.get(opened.name);
      if (frame === undefined || covered.has(opened.name)) return;
      covered.add(opened.name);
      record(frame, placesInTable(opened.table, frame.chunks.map((hex) => locations.get(hex) as Buffer), frame.name), frame.length);
    });
    await readAhead.done;
    left = [...frames.values()].filter((frame) => !covered.has(frame.name));
  }
  const spans = frameSpans(left);
  const lanes = repo.pool.threads * 2;
  const buffers = spans.length === 0 ? undefined : spanBuffers(lanes);
  await forEachLimited(spans, lanes, async (span) => {
    let opened: OpenedSpan;
    try {
      opened = await openSpan(repo, packKey((span[0] as FrameToCheck).pack), span, buffers as SharedBufferPool);
    } catch (error) {
      if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
      // A missing pack fails each frame alike; a short one only its frames past the end.
      for (const frame of span) {
        const { bytes, problems } = await checkFrame(repo, frame.entry, frame.chunks.map((hex) => locations.get(hex) as Buffer));
        record(frame, problems, bytes);
      }
      return;
    }
    span.forEach((frame, i) => {
      const result = opened[i];
      const entries = frame.chunks.map((hex) => locations.get(hex) as Buffer);
      if (result === undefined || result instanceof Error) {
        const message = result?.message ?? `frame ${frame.name} was not opened`;
        record(frame, entries.map((entry) => ({ problem: 'corrupt', message: `chunk ${entry.subarray(0, 32).toString('hex')}: ${message}` })), frame.length);
      } else {
        record(frame, placesInTable(result.table, entries, frame.name), frame.length);
      }
    });
  });
  if (bad.size === 0) return bad;
  // A damaged place does not make a damaged chunk when a backup stored it again since (the
  // index segments know the new place, and reads fall back to it): check those places.
  const index = await ChunkIndex.load(repo);
  for (const hex of [...bad.keys()]) {
    const hint = locations.get(hex) as Buffer;
    for (const other of await index.lookupAll(Buffer.from(hex, 'hex'))) {
      if (other.equals(hint)) continue;
      const { problems } = await checkFrame(repo, other, [other]);
      if (problems[0] === null) {
        bad.delete(hex);
        break;
      }
    }
  }
  return bad;
}

/** What opening a span's frames answered: per frame, its table or the error it failed with. */
export type OpenedSpan = Awaited<ReturnType<Repository['pool']['openFrames']>>;

/**
 * Shared buffers for `lanes` spans in flight ({@link openSpan}): a fixed set reused from span
 * to span, not a fresh buffer each (fresh memory cost page faults, zeroing and the workers'
 * garbage collection, ~0.1 s of a 3 s verify).
 */
export function spanBuffers(lanes: number): SharedBufferPool {
  return new SharedBufferPool(VERIFY_SPAN_BYTES, lanes);
}

/**
 * Reads a span of one pack's frames (object `key`, from the first frame's start to the last
 * one's end) with one ranged read, into one of `buffers` when it fits (a larger frame is a
 * span alone), and opens the frames in one worker task, every chunk rehashed. The read's own
 * failure is thrown: `E_MISSING_OBJECT` or `E_CORRUPT_OBJECT` for a pack gone or cut short.
 * `dispatched` is called once the frames are on their way to the worker.
 */
export async function openSpan(
  repo: Repository,
  key: string,
  span: readonly { offset: number; length: number; name: string }[],
  buffers: SharedBufferPool,
  dispatched?: () => void,
): Promise<OpenedSpan> {
  const first = span[0];
  const last = span.at(-1);
  if (first === undefined || last === undefined) return [];
  const length = last.offset + last.length - first.offset;
  const into = length <= VERIFY_SPAN_BYTES ? await buffers.acquire() : undefined;
  try {
    const blob = await readRange(repo.backend, key, first.offset, length, into);
    const opening = repo.pool.openFrames(
      blob,
      span.map((frame) => ({ offset: frame.offset - first.offset, length: frame.length, name: frame.name })),
      { rehash: true },
    );
    dispatched?.();
    return await opening;
  } finally {
    if (into !== undefined) buffers.release(into);
  }
}

/** A pack the repository stores: its key, id (hex) and size. */
export interface StoredPack {
  key: string;
  id: string;
  size: number;
}

/** The packs stored, from one listing of `packs/` (verify takes it once for its chunk and trailer checks). */
export async function listStoredPacks(repo: Repository): Promise<StoredPack[]> {
  const packs: StoredPack[] = [];
  for await (const entry of repo.backend.list(PACKS_PREFIX)) {
    const id = idFromKey(entry.key);
    if (id !== null) packs.push({ key: entry.key, id, size: entry.size });
  }
  return packs;
}

/**
 * `locations` as a reader should take them: an entry whose pack is not among `packs` (those
 * stored) replaced by the chunk's place in a stored pack, when the index segments (loaded
 * only then) know one; the others as they are (a chunk found nowhere is reported missing).
 */
async function withMovedPlaces(repo: Repository, chunks: readonly string[], locations: ReadonlyMap<string, Buffer>, packs: readonly StoredPack[]): Promise<Pick<ReadonlyMap<string, Buffer>, 'get'>> {
  const stored = new Set(packs.map((pack) => pack.id));
  const packOf = (entry: Buffer) => entry.toString('hex', 32, 64);
  const stale = chunks.filter((hex) => {
    const entry = locations.get(hex);
    return entry !== undefined && !stored.has(packOf(entry));
  });
  if (stale.length === 0) return locations;
  const index = await ChunkIndex.load(repo);
  const moved = new Map<string, Buffer>();
  for (const hex of stale) {
    const place = (await index.lookupAll(Buffer.from(hex, 'hex'))).find((entry) => stored.has(packOf(entry)));
    if (place !== undefined) moved.set(hex, place);
  }
  // An overlay, not a copy: verify's map holds an entry per chunk in use.
  return { get: (hex: string) => moved.get(hex) ?? locations.get(hex) };
}

/** Reads and opens (rehashing every chunk) the frame of `frameEntry`; checks each entry's chunk is in it. */
async function checkFrame(repo: Repository, frameEntry: Buffer, entries: Buffer[]): Promise<{ bytes: number; problems: (PackedChunkProblem | null)[] }> {
  const location = decodeLocatedEntry(frameEntry, 'index entry');
  const name = frameName(location);
  try {
    const blob = await readRange(repo.backend, packKey(location.pack.toString('hex')), location.frameOffset, location.frameLength);
    const bytes = blob.length;
    const { table } = await repo.pool.openFrame(blob, { name, rehash: true, keep: false });
    return { bytes, problems: placesInTable(table, entries, name) };
  } catch (error) {
    if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
    const problem = error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt';
    return { bytes: 0, problems: entries.map((entry) => ({ problem, message: `chunk ${entry.subarray(0, 32).toString('hex')}: ${error.message}` })) };
  }
}

/** Per located entry: null when the opened frame's table holds its chunk where it says, else why not. */
function placesInTable(table: readonly { id: Buffer; offset: number; length: number }[], entries: readonly Buffer[], name: string): (PackedChunkProblem | null)[] {
  return entries.map((entry): PackedChunkProblem | null => {
    const wanted = decodeLocatedEntry(entry, name);
    const found = table.find((c) => c.offset === wanted.chunkOffset);
    if (found !== undefined && found.length === wanted.chunkLength && found.id.equals(wanted.id)) return null;
    return { problem: 'corrupt', message: `chunk ${wanted.id.toString('hex')} is not where its entry says, in frame ${name}` };
  });
}

/**
 * The frames cut into spans to read at once: frames of the same pack, in order, each
 * starting where the one before ends, ≤ {@link VERIFY_SPAN_BYTES} together (a larger frame
 * is a span alone).
 */
export function frameSpans<T extends { pack: string; offset: number; length: number }>(frames: Iterable<T>, maxBytes = VERIFY_SPAN_BYTES): T[][] {
  const sorted = [...frames].sort((a, b) => (a.pack < b.pack ? -1 : a.pack > b.pack ? 1 : a.offset - b.offset));
  const spans: T[][] = [];
  let span: T[] = [];
  let start = 0;
  for (const frame of sorted) {
    const last = span[span.length - 1];
    if (last !== undefined && (last.pack !== frame.pack || last.offset + last.length !== frame.offset || frame.offset + frame.length - start > maxBytes)) {
      spans.push(span);
      span = [];
    }
    if (span.length === 0) start = frame.offset;
    span.push(frame);
  }
  if (span.length > 0) spans.push(span);
  return spans;
}

/** Format 2's existence check: chunks whose pack is not listed, and that no index segment places in a listed pack. */
export async function chunksInMissingPacks(repo: Repository, chunks: Iterable<string>, locations: ReadonlyMap<string, Buffer>): Promise<Map<string, PackedChunkProblem>> {
  const packs = new Set<string>();
  for await (const entry of repo.backend.list(PACKS_PREFIX)) {
    const hex = idFromKey(entry.key);
    if (hex !== null) packs.add(hex);
  }
  const bad = new Map<string, PackedChunkProblem>();
  for (const hex of chunks) {
    const entry = locations.get(hex);
    if (entry === undefined) continue;
    const pack = decodeLocatedEntry(entry, `chunk ${hex}`).pack.toString('hex');
    if (!packs.has(pack)) bad.set(hex, { problem: 'missing', message: `chunk ${hex} is missing: pack ${pack} is not stored` });
  }
  if (bad.size === 0) return bad;
  // A pack gone is not a chunk gone when the index segments know another place in a stored
  // pack (prune repacked it, or a backup stored it again): reads fall back to it.
  const index = await ChunkIndex.load(repo);
  for (const hex of [...bad.keys()]) {
    const elsewhere = (await index.lookupAll(Buffer.from(hex, 'hex'))).some((entry) => packs.has(entry.subarray(32, 64).toString('hex')));
    if (elsewhere) bad.delete(hex);
  }
  return bad;
}

/**
 * `problems` without the packs found missing that are no longer listed: a pack a prune beside
 * verify removed (after repacking what was live in it, or because nothing was) is gone, not
 * damaged; a chunk it held that is still in use is checked, and reported, by its own read.
 */
export async function withoutRemovedPacks(repo: Repository, problems: PackTrailerProblem[]): Promise<PackTrailerProblem[]> {
  if (!problems.some((p) => p.problem === 'missing')) return problems;
  const stored = new Set((await listStoredPacks(repo)).map((pack) => pack.id));
  return problems.filter((p) => p.problem !== 'missing' || stored.has(idFromKey(p.pack) ?? p.pack));
}

/** A pack whose footer or trailer does not read, with why. */
export interface PackTrailerProblem {
  pack: string;
  problem: 'missing' | 'corrupt';
  message: string;
}

/**
 * Reads every pack's footer and trailer (two ranged reads a pack) and authenticates and parses
 * the trailer (format/pack.ts, docs/repository-format.md §19.2). The frames are what restores
 * read, through the snapshots' located entries, so a damaged trailer loses no data; but prune
 * plans its repacking from the trailers and an index rebuild reads nothing else, so `verify
 * --read-data` reports it. Reading frames never touches the trailer: a flipped byte in the
 * last 8 bytes of every pack went unnoticed before (2026-11-27).
 */
export async function checkPackTrailers(repo: Repository, packs: readonly StoredPack[]): Promise<PackTrailerProblem[]> {
  const problems: PackTrailerProblem[] = [];
  await forEachLimited(packs, 8, async (pack) => {
    const trailer = await readTrailerOrProblem(repo, pack);
    if (!('frames' in trailer)) problems.push(trailer);
  });
  return problems.sort((a, b) => a.pack.localeCompare(b.pack));
}

/** A pack's trailer ({@link checkPackTrailers}), or what is wrong with it. */
export async function readTrailerOrProblem(repo: Repository, pack: StoredPack): Promise<PackTrailer | PackTrailerProblem> {
  try {
    return await readTrailer(repo, pack.key, pack.size);
  } catch (error) {
    if (!isCofferError(error, 'E_CORRUPT_OBJECT') && !isCofferError(error, 'E_MISSING_OBJECT')) throw error;
    return {
      pack: pack.key,
      problem: error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt',
      message: `${error.message} — its table of contents: the chunks in it still restore, but prune cannot plan around this pack and an index rebuild cannot list it`,
    };
  }
}
