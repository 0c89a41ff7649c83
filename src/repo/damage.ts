import { isCofferError } from '../errors/index.js';
import { recordChunkDeletions } from './chunk-cache.js';
import { QUARANTINE_PREFIX, chunkKey } from './layout.js';
import type { Repository } from './repository.js';
import type { ObjectId } from './codec.js';

/*
 * The life of a quarantine marker (`quarantine/<id>.<unix ms>`, docs/repository-format.md §9):
 * 1. verify --read-data finds a chunk damaged (or missing) and writes the marker
 *    ({@link quarantineChunk}); format 1 also moves the damaged chunk object aside.
 * 2. Every backup lists the markers first ({@link listQuarantined}) and never reuses
 *    (deduplicates against) a marked id: the first one that meets the data stores the chunk
 *    again (the heal), and reads of older snapshots find it there.
 * 3. Format 2 prune drops the damaged copies once a good copy is stored elsewhere (or once no
 *    snapshot uses the chunk): it repacks the damaged pack without them (dead-copies.ts).
 * 4. Prune retires the marker (deletes it) once the chunk's damaged copies are gone and a good
 *    copy is held, or no snapshot uses the chunk and no damaged copy is left
 *    (quarantine-retire.ts). A marker that outlived its heal made every later backup store the
 *    chunk once more, for ever.
 */

/**
 * Damaged chunks that verify has set aside under `quarantine/<id>.<unix ms>`. A backup reads
 * this list first and never reuses those ids, so the next backup that meets the same data
 * stores it again under the same id and every snapshot that needed it heals. Prune retires a
 * marker once the chunk's damaged copies are gone (quarantine-retire.ts): from then on backups
 * deduplicate against the good copy again.
 */
export async function listQuarantined(repo: Repository): Promise<Set<string>> {
  return new Set((await listQuarantineMarkers(repo)).keys());
}

/**
 * The quarantine markers by chunk id (hex), each with its keys: verify writes one per damaged
 * chunk, but format 1 writes another when the chunk went bad again after a heal.
 */
export async function listQuarantineMarkers(repo: Repository): Promise<Map<string, string[]>> {
  const markers = new Map<string, string[]>();
  for await (const entry of repo.backend.list(QUARANTINE_PREFIX)) {
    const name = entry.key.slice(QUARANTINE_PREFIX.length);
    const hex = name.split('.')[0] ?? '';
    if (!/^[0-9a-f]{64}$/.test(hex)) continue;
    const keys = markers.get(hex);
    if (keys === undefined) markers.set(hex, [entry.key]);
    else keys.push(entry.key);
  }
  return markers;
}

/**
 * Moves a damaged chunk aside: a copy under `quarantine/` (kept for inspection until prune
 * retires it after the heal), then the chunk is deleted, so it counts as missing until a
 * backup stores it again. Idempotent.
 * Under Object Lock the damaged chunk may not be deletable yet: it stays, and the next
 * backup that meets the data writes a good version over it (backups never reuse a
 * quarantined id), which is what reads then see, and prune retires the marker once that
 * version reads (quarantine-retire.ts). `known` (listQuarantined): a chunk set aside
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
