import { forEachLimited } from '../concurrency/index.js';
import { isCofferError } from '../errors/index.js';
import { readRange } from './backend/read-range.js';
import { decodeLocatedEntry } from './format/located-entry.js';
import { ChunkIndex } from './chunk-index.js';
import { frameName } from './frame-reader.js';
import { idFromKey, packKey, PACKS_PREFIX } from './layout.js';
import type { Repository } from './repository.js';

/** A chunk verify found missing or corrupt, with why. */
export interface PackedChunkProblem {
  problem: 'missing' | 'corrupt';
  message: string;
}

/**
 * Format 2's half of `verify --read-data`: the chunks to read (hex ids, each with the located
 * entry a snapshot names it by) are grouped by frame; each frame is read once (one ranged
 * read), authenticated, decompressed and every chunk in it rehashed on a worker, and each
 * chunk asked for must be in the frame's table at the place its entry says. A frame that
 * fails names every chunk asked of it. `onFrame` reports progress.
 */
export async function checkPackedChunks(
  repo: Repository,
  chunks: readonly string[],
  locations: ReadonlyMap<string, Buffer>,
  onFrame: (chunks: number, bytes: number) => void,
): Promise<Map<string, PackedChunkProblem>> {
  const bad = new Map<string, PackedChunkProblem>();
  const frames = new Map<string, { entry: Buffer; chunks: string[] }>();
  for (const hex of chunks) {
    const entry = locations.get(hex);
    if (entry === undefined) continue;
    const location = decodeLocatedEntry(entry, `chunk ${hex}`);
    const key = frameName(location);
    const frame = frames.get(key) ?? { entry, chunks: [] };
    frame.chunks.push(hex);
    frames.set(key, frame);
  }
  await forEachLimited([...frames.entries()], repo.pool.threads * 2, async ([name, frame]) => {
    const { bytes, problems } = await checkFrame(repo, frame.entry, frame.chunks.map((hex) => locations.get(hex) as Buffer));
    problems.forEach((problem, i) => {
      if (problem !== null) bad.set(frame.chunks[i] as string, problem);
    });
    onFrame(frame.chunks.length, bytes);
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

/** Reads and opens (rehashing every chunk) the frame of `frameEntry`; checks each entry's chunk is in it. */
async function checkFrame(repo: Repository, frameEntry: Buffer, entries: Buffer[]): Promise<{ bytes: number; problems: (PackedChunkProblem | null)[] }> {
  const location = decodeLocatedEntry(frameEntry, 'index entry');
  const name = frameName(location);
  try {
    const blob = await readRange(repo.backend, packKey(location.pack.toString('hex')), location.frameOffset, location.frameLength);
    const bytes = blob.length;
    const { table } = await repo.pool.openFrame(blob, { name, rehash: true, keep: false });
    const problems = entries.map((entry): PackedChunkProblem | null => {
      const wanted = decodeLocatedEntry(entry, name);
      const found = table.find((c) => c.offset === wanted.chunkOffset);
      if (found !== undefined && found.length === wanted.chunkLength && found.id.equals(wanted.id)) return null;
      return { problem: 'corrupt', message: `chunk ${wanted.id.toString('hex')} is not where its entry says, in frame ${name}` };
    });
    return { bytes, problems };
  } catch (error) {
    if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
    const problem = error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt';
    return { bytes: 0, problems: entries.map((entry) => ({ problem, message: `chunk ${entry.subarray(0, 32).toString('hex')}: ${error.message}` })) };
  }
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
