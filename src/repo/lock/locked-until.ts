import { isCofferError } from '../../errors/index.js';
import { isLockedKey, lockedBackendOf } from './locked-backend.js';
import type { Backend } from '../backend/backend.js';

/**
 * What a deleter (prune, its repacking of format 2 packs) asks before deleting an object of a
 * repository with Object Lock: until when the store keeps it. Read from the store (one HEAD),
 * never from the retention cache, which may be short but a delete needs the truth.
 *
 * - `null`: nothing stops a delete now — the repository has no lock, the key is bookkeeping
 *   that is never locked ({@link isLockedKey}), the object is gone, or its retention has ended
 *   by `now`.
 * - a date: the object is locked until then; a delete is refused by the store (and
 *   `Backend.delete` throws `E_OBJECT_LOCKED`). Leave it for a later prune.
 *
 * A pack that prune rewrites (repacks) is safe to replace by a new one written through the
 * repository: every put of a lockable key is locked `days × 1.5` ahead (lock-policy.ts), longer
 * than any snapshot's lock-until, so the new pack and the index pages that point to it are
 * locked at least as long as the snapshots that need them; the old pack stays until its own
 * retention ends.
 *
 * @example
 * const until = await lockedUntil(repo, packKey(hex));
 * if (until !== null) report.stillLocked++; else await repo.backend.delete(packKey(hex));
 */
export async function lockedUntil(repo: { backend: Backend }, key: string, options: { now?: Date } = {}): Promise<Date | null> {
  const lock = lockedBackendOf(repo);
  if (lock === undefined || !isLockedKey(key)) return null;
  let retention;
  try {
    retention = await lock.retention(key);
  } catch (error) {
    if (isCofferError(error, 'E_MISSING_OBJECT')) return null;
    throw error;
  }
  if (retention === null) return null;
  return retention.until.getTime() > (options.now ?? lock.now()).getTime() ? retention.until : null;
}
