import { isCofferError } from '../errors/index.js';
import { recordChunkDeletions } from './chunk-cache.js';
import { QUARANTINE_PREFIX, chunkKey } from './layout.js';
import type { Repository } from './repository.js';
import type { ObjectId } from './codec.js';

/**
 * Damaged chunks that verify has set aside under `quarantine/<id>.<unix ms>`. A backup reads
 * this list first and never reuses those ids, so the next backup that meets the same data
 * stores it again under the same id and every snapshot that needed it heals.
 */
export async function listQuarantined(repo: Repository): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const entry of repo.backend.list(QUARANTINE_PREFIX)) {
    const name = entry.key.slice(QUARANTINE_PREFIX.length);
    const hex = name.split('.')[0] ?? '';
    if (/^[0-9a-f]{64}$/.test(hex)) ids.add(hex);
  }
  return ids;
}

/**
 * Moves a damaged chunk aside: a copy under `quarantine/` (kept for inspection), then the
 * chunk is deleted, so it counts as missing until a backup stores it again. Idempotent.
 * Under Object Lock the damaged chunk may not be deletable yet: it stays, and the next
 * backup that meets the data writes a good version over it (backups never reuse a
 * quarantined id), which is what reads then see. `known` (listQuarantined): a chunk set aside
 * already gets no second marker while it is still missing (format 1), or at all (format 2,
 * where a marker only names the id): each verify used to add one more for the same chunk.
 */
export async function quarantineChunk(repo: Repository, id: ObjectId, now: Date, why = 'damaged', known?: ReadonlySet<string>): Promise<void> {
  const hex = id.toString('hex');
  if (known?.has(hex) === true && (repo.config.version === 2 || !(await repo.backend.has(chunkKey(hex))))) return;
  if (repo.config.version === 2) {
    // Format 2: the chunk lies in a pack with others; only the id is set aside (a marker
    // saying why), the pack stays. Backups never reuse the id, so the next one that meets the
    // data stores it in a new pack and its index segment gives the new place (reads of older
    // snapshots fall back to it: snapshot-disk.ts).
    await repo.backend.put(`${QUARANTINE_PREFIX}${hex}.${now.getTime()}`, Buffer.from(`${why}\n`));
    await repo.backend.sync();
    return;
  }
  const key = chunkKey(hex);
  // A chunk already missing leaves a marker: the id is what backups need to know.
  const blob = await repo.backend.get(key).catch(() => Buffer.from('missing when verified\n'));
  await repo.backend.put(`${QUARANTINE_PREFIX}${hex}.${now.getTime()}`, blob);
  await repo.backend.sync();
  await recordChunkDeletions(repo.backend);
  await repo.backend.delete(key).catch((error: unknown) => {
    if (!isCofferError(error, 'E_OBJECT_LOCKED')) throw error;
  });
}
