import { isCofferError } from '../errors/index.js';
import { ChunkIndex } from './chunk-index.js';
import { listQuarantineMarkers } from './damage.js';
import { ObjectKind } from './format/envelope.js';
import { decodeLocatedEntry } from './format/located-entry.js';
import type { IdPrefixSet } from './id-prefix-set.js';
import { chunkKey } from './layout.js';
import type { PackPlan } from './pack-plan.js';
import type { Repository } from './repository.js';

/** What prune did with the quarantine markers (or, in a dry run, would do). */
export interface QuarantineRetirement {
  /** Chunks whose markers were deleted (would be): their damaged copies are gone. */
  retired: number;
  /** Markers a delete was refused for (Object Lock, a bucket's default retention): a later prune retires them. */
  stillLocked: number;
}

/** Options of {@link retireQuarantine}. */
export interface RetireOptions {
  dryRun: boolean;
  /** Format 2: the plan the pack sweep carried out (its `kept` as the sweep left it). */
  plan?: PackPlan;
  /** Format 1: the chunk objects (hex) this prune deleted, or in a dry run would delete. */
  removedChunks: ReadonlySet<string>;
}

/**
 * Retires the quarantine markers (damage.ts) whose job is done, at the end of a prune, after
 * every delete of its sweep: a marker makes backups store its chunk again instead of
 * deduplicating against it, which heals the snapshots once, but a marker that outlived the
 * heal made every later backup store the chunk once more, for ever (format 2: a new pack each
 * time; format 1: the chunk object uploaded again). A marker goes once the chunk's damaged
 * copies are gone and a good copy is held, or once no snapshot uses the chunk and no damaged
 * copy is left (`live`: prune's mark):
 * - format 2: every copy the index segments name reads (its frame opens, every chunk
 *   rehashed), and so does every copy the trailers list in an old pack the sweep kept (a pack
 *   no segment names is still read by `repair --index`); a used chunk needs at least one. Never
 *   while a damaged copy is still in a pack: then the marker is what keeps backups from
 *   deduplicating against it, and what makes the next prune look for its dead copies. The
 *   copies the plan knew are checked first, from its frame reads; the index (every segment
 *   read) is loaded only when a chunk passes them, so a prune that retires nothing pays for
 *   nothing more. A pack whose trailer does not read may hold any chunk: then none is retired.
 * - format 1: the chunk object reads (the heal's, or a locked damaged chunk overwritten by
 *   it), or it is gone and no snapshot uses the chunk.
 * The markers are deleted after a sync, so that the sweep's deletes and rewritten segments are
 * durable first: a prune killed at any point leaves the markers of chunks it has not made
 * whole, and a marker left behind is retired by the next prune. Markers are bookkeeping, never
 * locked by Coffer (lock/locked-backend.ts); one a store refuses to delete anyway stays (it
 * only costs a backup storing the chunk again) and is counted in `stillLocked`. A dry run
 * deletes nothing and reports the chunks whose markers it would retire, as if the planned
 * sweep had happened.
 */
export async function retireQuarantine(repo: Repository, live: IdPrefixSet, options: RetireOptions): Promise<QuarantineRetirement> {
  const retirement: QuarantineRetirement = { retired: 0, stillLocked: 0 };
  const markers = await listQuarantineMarkers(repo);
  if (markers.size === 0) return retirement;
  const healed = options.plan !== undefined ? packedHealed(repo, live, options.plan, options.dryRun) : objectHealed(repo, live, options.removedChunks);
  const done: string[][] = [];
  for (const [hex, keys] of markers) if (await healed(hex)) done.push(keys);
  if (options.dryRun || done.length === 0) {
    retirement.retired = done.length;
    return retirement;
  }
  await repo.backend.sync();
  for (const keys of done) {
    let locked = 0;
    for (const key of keys) if (!(await deleteMarker(repo, key))) locked++;
    if (locked === 0) retirement.retired++;
    retirement.stillLocked += locked;
  }
  return retirement;
}

/** Whether a quarantined id (hex) of a format 2 repository has no damaged copy left (see {@link retireQuarantine}). */
function packedHealed(repo: Repository, live: IdPrefixSet, plan: PackPlan, dryRun: boolean): (hex: string) => Promise<boolean> {
  if (plan.unreadable.length > 0) return () => Promise.resolve(false);
  let index: Promise<ChunkIndex> | undefined;
  return async (hex) => {
    const id = Buffer.from(hex, 'hex');
    const used = live.has(id);
    const copies = plan.copies.copiesOf(hex);
    // A copy comes only from a copy: a used chunk no trailer lists has no good one anywhere.
    if (used && copies.length === 0) return false;
    // The old packs' copies that stay: in a pack kept as it is, and (a dry run, before the
    // repacks) in a pack to repack that copies it, where the new copy reads as the old one.
    const staying = copies.filter((c) => plan.kept.has(c.pack) || (dryRun && used && plan.deadCopies.get(c.pack)?.has(hex) !== true));
    for (const copy of staying) if (!(await plan.copies.copyReads(copy.location))) return false;
    if (dryRun) return !used || staying.length > 0;
    // What backups see after the sweep: every place the segments name, the repacks' new ones too.
    index ??= ChunkIndex.load(repo);
    const places = await (await index).lookupAll(id);
    if (used && places.length === 0) return false;
    for (const entry of places) if (!(await plan.copies.copyReads(decodeLocatedEntry(entry, `index entry of chunk ${hex}`)))) return false;
    return true;
  };
}

/** Whether a quarantined id (hex) of a format 1 repository has no damaged copy left (see {@link retireQuarantine}). */
function objectHealed(repo: Repository, live: IdPrefixSet, removed: ReadonlySet<string>): (hex: string) => Promise<boolean> {
  return async (hex) => {
    const id = Buffer.from(hex, 'hex');
    const gone = !live.has(id);
    if (removed.has(hex)) return true; // deleted as garbage: no snapshot uses it
    const key = chunkKey(hex);
    let blob: Buffer;
    try {
      blob = await repo.backend.get(key);
    } catch (error) {
      if (isCofferError(error, 'E_MISSING_OBJECT')) return gone;
      throw error;
    }
    try {
      await repo.pool.open(blob, { kind: ObjectKind.chunk, name: key, id, rehash: true, into: 'discard' });
      return true;
    } catch (error) {
      if (isCofferError(error, 'E_CORRUPT_OBJECT')) return false;
      throw error;
    }
  };
}

/** Deletes marker `key`; false (and nothing thrown) when the store refuses it under a lock. A marker gone already counts as deleted. */
async function deleteMarker(repo: Repository, key: string): Promise<boolean> {
  try {
    await repo.backend.delete(key);
    return true;
  } catch (error) {
    if (isCofferError(error, 'E_MISSING_OBJECT')) return true;
    if (isCofferError(error, 'E_OBJECT_LOCKED')) return false;
    throw error;
  }
}
