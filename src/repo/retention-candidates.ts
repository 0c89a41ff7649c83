import type { CofferError } from '../errors/index.js';
import { listProtections } from './protection.js';
import type { RetentionCandidate } from './retention/index.js';
import { snapshotOfTagRecord } from './snapshot-tags.js';
import { listSnapshots, type Snapshot } from './snapshots.js';

/** A snapshot as a forget by policy weighs it. */
export type SnapshotCandidate = Snapshot & RetentionCandidate;

/**
 * The snapshots a forget by policy decides on (of one VM, or all), each with what retention
 * needs beyond its manifest: whether it is protected, and whether a tag record of it does
 * not open (its tags unknown: a tag rule keeps it). The one listing for `coffer forget
 * --keep-*` and the server's forget task, so that both decide on the same facts. Tag records
 * are required (a store refusing their listing is an error, never the backed-up tags).
 * Damaged manifests are left out and named to `onDamaged`; snapshots with unreadable tags to
 * `onTagsUnreadable`, once each.
 */
export async function listRetentionCandidates(
  repo: Parameters<typeof listSnapshots>[0],
  options: { vm?: string | undefined; onDamaged: (id: string, error: CofferError) => void; onTagsUnreadable: (id: string) => void },
): Promise<SnapshotCandidate[]> {
  const tagsUnreadable = new Set<string>();
  const snapshots = await listSnapshots(repo, {
    ...(options.vm !== undefined ? { vm: options.vm } : {}),
    requireTags: true,
    onDamaged: options.onDamaged,
    onDamagedTags: (key) => void tagsUnreadable.add(snapshotOfTagRecord(key)),
  });
  for (const id of tagsUnreadable) options.onTagsUnreadable(id);
  const protections = await listProtections(repo);
  return snapshots.map((s) => ({ ...s, protected: protections.has(s.id), ...(tagsUnreadable.has(s.id) ? { tagsUnreadable: true } : {}) }));
}
