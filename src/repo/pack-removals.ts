import { randomBytes } from 'node:crypto';
import { isCofferError } from '../errors/index.js';
import { decodeRemovedPacks, encodeRemovedPacks, MAX_REMOVED_PACKS, NO_REMOVALS, parseRecordName, recordName, type RecordName } from './format/removed-packs.js';
import { REMOVED_PACKS_PREFIX } from './layout.js';
import type { Backend } from './backend/backend.js';

/** What the records need of a repository: its backend. */
type Store = { backend: Backend };

/**
 * The prune generation of a format 2 repository (docs/repository-format.md §19.11): which
 * packs prunes removed since a snapshot was written, so that an incremental asks nothing
 * about its parent's packs when no prune removed one since (before: a `has` per pack, a HEAD
 * each on S3, on every incremental), and only reads the records of the prunes since when
 * some did.
 */

/** What a backup learns at its start: the mark its snapshot records, and what was removed since its parent's. */
export interface PackRemovals {
  /**
   * The `prunedThrough` the new snapshot records: the newest record's name, {@link NO_REMOVALS}
   * when there is none, undefined when the records could not be listed (a repository server
   * that does not know them): then the snapshot records nothing, as one written before.
   */
  mark: string | undefined;
  /**
   * The packs (hex) removed since the parent's mark: empty when none was, undefined when that
   * is unknown (the parent records no mark, a record since it is missing or does not read):
   * then each pack the parent names is asked for (current-places.ts).
   */
  since: ReadonlySet<string> | undefined;
}

/**
 * Lists the records (one request) and, when the parent's mark `parentMark` is older than the
 * newest, reads the records after it. Called by a backup once it holds its lease: no prune
 * removes a pack until the backup ends (docs/concurrency.md), and one that does anyway (its
 * lease presumed dead) writes a newer record, which the next incremental reads.
 */
export async function packRemovalsSince(repo: Store, parentMark: string | undefined): Promise<PackRemovals> {
  let records: RecordName[];
  try {
    records = await listRecords(repo);
  } catch (error) {
    if (isCofferError(error, 'E_ACCESS_DENIED')) return { mark: undefined, since: undefined }; // an older repository server
    throw error;
  }
  const newest = records.reduce<RecordName | undefined>((max, r) => (max === undefined || r.generation > max.generation ? r : max), undefined);
  const mark = newest?.name ?? NO_REMOVALS;
  if (parentMark === undefined) return { mark, since: undefined };
  const from = parentMark === NO_REMOVALS ? 0 : parseRecordName(parentMark)?.generation;
  if (from === undefined) return { mark, since: undefined };
  if (from > 0 && !records.some((r) => r.name === parentMark)) return { mark, since: undefined }; // another repository's mark, or its record gone
  const after = records.filter((r) => r.generation >= from && r.name !== parentMark);
  const generations = new Set(after.map((r) => r.generation));
  for (let g = from + 1; g <= (newest?.generation ?? 0); g++) if (!generations.has(g)) return { mark, since: undefined };
  const since = new Set<string>();
  for (const record of after) {
    let packs: string[];
    try {
      packs = decodeRemovedPacks(await repo.backend.get(REMOVED_PACKS_PREFIX + record.name), record.name);
    } catch (error) {
      if (isCofferError(error, 'E_CORRUPT_OBJECT') || isCofferError(error, 'E_MISSING_OBJECT')) return { mark, since: undefined };
      throw error;
    }
    for (const pack of packs) since.add(pack);
  }
  return { mark, since };
}

/**
 * Prune, before its first delete of a pack: records `packs` (hex ids) as removed under the
 * next generation (several records when they are more than one holds). The caller syncs
 * before deleting. Prunes never overlap (the prune lease), so the generation is unique.
 */
export async function recordRemovedPacks(repo: Store, packs: readonly string[]): Promise<string[]> {
  const records = await listRecords(repo);
  let generation = records.reduce((max, r) => Math.max(max, r.generation), 0);
  const names: string[] = [];
  for (let i = 0; i < packs.length; i += MAX_REMOVED_PACKS) {
    generation++;
    const name = recordName(generation, randomBytes(16).toString('hex'));
    await repo.backend.put(REMOVED_PACKS_PREFIX + name, encodeRemovedPacks(generation, packs.slice(i, i + MAX_REMOVED_PACKS)));
    names.push(name);
  }
  return names;
}

/**
 * Prune, at its end: deletes the records that no kept snapshot's next incremental needs. A
 * snapshot whose mark is record G needs G (to know its mark is this repository's) and every
 * later one; one marked `none` needs them all; one with no mark (written before, or copied from
 * elsewhere) or a mark not listed needs none (its incremental asks each pack). So the records
 * older than the oldest generation the `marks` name go, never the newest (the next generation
 * is one more than it). Returns how many were deleted.
 */
export async function dropUnneededRecords(repo: Store, marks: Iterable<string | undefined>): Promise<number> {
  const records = await listRecords(repo);
  const names = new Set(records.map((r) => r.name));
  let oldestNeeded = Number.POSITIVE_INFINITY;
  for (const mark of marks) {
    if (mark === NO_REMOVALS) oldestNeeded = 0;
    else if (mark !== undefined && names.has(mark)) oldestNeeded = Math.min(oldestNeeded, parseRecordName(mark)?.generation ?? 0);
  }
  const newest = records.reduce((max, r) => Math.max(max, r.generation), 0);
  let deleted = 0;
  for (const record of records) {
    if (record.generation >= oldestNeeded || record.generation === newest) continue;
    await repo.backend.delete(REMOVED_PACKS_PREFIX + record.name);
    deleted++;
  }
  return deleted;
}

async function listRecords(repo: Store): Promise<RecordName[]> {
  const records: RecordName[] = [];
  for await (const entry of repo.backend.list(REMOVED_PACKS_PREFIX)) {
    const parsed = parseRecordName(entry.key.slice(REMOVED_PACKS_PREFIX.length));
    if (parsed !== null) records.push(parsed); // `.tmp-*` files of a local backend are not records
  }
  return records;
}
