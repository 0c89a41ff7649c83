import { CofferError, isCofferError } from '../errors/index.js';
import { ObjectKind } from './format/envelope.js';
import { encodeSegment, MAX_SEGMENT_ENTRIES } from './format/index-segment.js';
import { idFromKey, SEGMENTS_PREFIX, segmentKey } from './layout.js';
import { lockedUntil } from './lock/locked-until.js';
import { readSegment } from './pack-plan.js';
import type { Repository } from './repository.js';

/**
 * When prune merges index segments (docs/repository-format.md §19.4, §19.7): a segment is
 * small below 1 MiB stored (about 13,000 entries: a backup that added less than ~3 GiB), and
 * small ones are merged once there are at least 8 of them, into segments of up to 65,536
 * entries (the most a segment holds).
 */
export const SEGMENT_MERGE_DEFAULTS = { smallBytes: 1024 * 1024, minSegments: 8 } as const;

/** What the merge did (or, in a dry run, would do). */
export interface SegmentMergeReport {
  /** Segments before the merge. */
  segmentsBefore: number;
  /** Small segments replaced by merged ones (deleted; in a dry run: that would be). */
  segmentsMerged: number;
  /** Merged segments written (0 in a dry run). */
  segmentsWritten: number;
  /** Small segments Object Lock keeps as they are (a later prune merges them). */
  stillLocked: number;
}

/**
 * Merges the repository's small index segments (format 2; run by prune under its lease, so no
 * backup adds a segment meanwhile). Every backup adds a segment, so after thousands of
 * backups opening the chunk index would list and read thousands of small objects.
 *
 * The small segments not under Object Lock are read in name order and gathered into batches of
 * at most 65,536 entries; each batch becomes one segment (sorted by chunk id, identical entries
 * once; a chunk with several different places — stored again after verify set one aside —
 * keeps them all, the second place in a second segment, and so on, since a segment's ids are
 * unique). Order, so that a crash at any point leaves a readable repository: every merged
 * segment is written, then sync, then the small ones are deleted. A crash before the deletes
 * leaves entries named twice (both segments name the same places: readers and backups take
 * either), and the next prune merges them again, identical entries once. Memory: one batch
 * (≤ 5 MiB of entries) and one segment at a time.
 */
export async function mergeSmallSegments(
  repo: Repository,
  options: { dryRun?: boolean; signal?: AbortSignal | undefined; smallBytes?: number; minSegments?: number } = {},
): Promise<SegmentMergeReport> {
  const smallBytes = options.smallBytes ?? SEGMENT_MERGE_DEFAULTS.smallBytes;
  const minSegments = options.minSegments ?? SEGMENT_MERGE_DEFAULTS.minSegments;
  const interrupted = () => new CofferError('E_INTERRUPTED', 'prune interrupted (run it again: the merged segments are kept)');
  const report: SegmentMergeReport = { segmentsBefore: 0, segmentsMerged: 0, segmentsWritten: 0, stillLocked: 0 };
  const small: string[] = [];
  for await (const entry of repo.backend.list(SEGMENTS_PREFIX)) {
    const hex = idFromKey(entry.key);
    if (hex === null) continue;
    report.segmentsBefore++;
    if (entry.size < smallBytes) small.push(hex);
  }
  small.sort();
  const candidates: string[] = [];
  for (const hex of small) {
    if ((await lockedUntil(repo, segmentKey(hex))) !== null) report.stillLocked++;
    else candidates.push(hex);
  }
  if (candidates.length < minSegments) return report;

  const replaced: string[] = [];
  const written = new Set<string>();
  let batch: { hexes: string[]; entries: Buffer[] } = { hexes: [], entries: [] };
  const flush = async () => {
    if (batch.hexes.length > 1) {
      if (options.dryRun !== true) for (const entries of layers(batch.entries)) written.add(await writeSegment(repo, entries, report));
      replaced.push(...batch.hexes);
    }
    batch = { hexes: [], entries: [] };
  };
  for (const hex of candidates) {
    if (options.signal?.aborted) throw interrupted();
    const segment = await readSegment(repo, hex);
    if (batch.entries.length + segment.count > MAX_SEGMENT_ENTRIES) await flush();
    batch.hexes.push(hex);
    for (let i = 0; i < segment.count; i++) batch.entries.push(Buffer.from(segment.entryAt(i)));
  }
  await flush();
  report.segmentsMerged = replaced.filter((hex) => !written.has(hex)).length;
  if (options.dryRun === true || replaced.length === 0) return report;
  await repo.backend.sync();
  for (const hex of replaced) {
    if (options.signal?.aborted) throw interrupted();
    // A merge may give back the very segment an interrupted merge wrote (the others it replaced
    // were left): that one stays.
    if (written.has(hex)) continue;
    try {
      await repo.backend.delete(segmentKey(hex));
    } catch (error) {
      if (!isCofferError(error, 'E_MISSING_OBJECT')) throw error;
    }
  }
  await repo.backend.sync();
  return report;
}

/**
 * `entries` sorted by chunk id, identical ones once, split into layers whose ids are unique:
 * the first place of every chunk, then the second places, and so on (usually one layer).
 */
function layers(entries: Buffer[]): Buffer[][] {
  entries.sort((a, b) => Buffer.compare(a, b)); // by id first: the id is the entry's first 32 bytes
  const result: Buffer[][] = [];
  let previous: Buffer | undefined;
  let depth = 0;
  for (const entry of entries) {
    if (previous !== undefined && previous.equals(entry)) continue;
    depth = previous !== undefined && previous.subarray(0, 32).equals(entry.subarray(0, 32)) ? depth + 1 : 0;
    (result[depth] ??= []).push(entry);
    previous = entry;
  }
  return result;
}

/** Writes one segment of `entries`; answers its id (hex). */
async function writeSegment(repo: Repository, entries: Buffer[], report: SegmentMergeReport): Promise<string> {
  const plaintext = encodeSegment(entries);
  const id = repo.codec.idOf(plaintext);
  const sealed = await repo.pool.seal(plaintext, ObjectKind.indexSegment, id);
  const hex = id.toString('hex');
  await repo.backend.put(segmentKey(hex), sealed);
  report.segmentsWritten++;
  return hex;
}
