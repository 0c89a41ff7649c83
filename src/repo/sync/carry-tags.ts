/**
 * Tags set after the fact follow a snapshot to its copies. A copy's manifest is the source's
 * (its tags as backed up); the tags `coffer tag` set on the source are a tag record there
 * (snapshot-tags.ts), and sync writes one on the copy, with the same tags and the same time,
 * when the source's is newer than any the copy has and the tags differ. So a hold set on the
 * source before or after the first sync reaches the copies (an offsite `forget --keep-tag`
 * sees it), and a copy retagged at the destination since keeps its tags until the source is
 * tagged again (the newest record wins across repositories as within one). Once the record
 * written is durable, the copy's records it supersedes are deleted, as `coffer tag` does.
 */
import { CofferError } from '../../errors/index.js';
import type { Repository } from '../repository.js';
import { deleteSupersededTagRecords, listTagRecords, writeTagRecord } from '../snapshot-tags.js';
import type { Snapshot } from '../snapshots.js';

/** What {@link carryTags} did: the tags written on the copy, or refused by the destination; null when they need not follow. */
export type CarriedTags = { carried: string[] } | { refused: string[] } | null;

/**
 * Writes the source's tags on `copy` when they should follow (above). A destination that
 * refuses the record (`E_ACCESS_DENIED`: a repository server's append-only token, which may
 * not write tag records) leaves the copy as it is, and says so (`refused`).
 */
export async function carryTags(destination: Repository, source: Snapshot, copy: Snapshot): Promise<CarriedTags> {
  const set = source.retagged;
  if (set === undefined) return null;
  if (copy.retagged !== undefined && Date.parse(copy.retagged.time) >= Date.parse(set.time)) return null;
  if (copy.tags.length === source.tags.length && copy.tags.every((tag, i) => tag === source.tags[i])) return null;
  let written;
  try {
    written = await writeTagRecord(destination, copy.id, source.tags, new Date(set.time));
  } catch (error) {
    if (error instanceof CofferError && error.code === 'E_ACCESS_DENIED') return { refused: [...source.tags] };
    throw error;
  }
  if (copy.retagged !== undefined) {
    await destination.backend.sync();
    const older = (await listTagRecords(destination, { snapshot: copy.id })).get(copy.id) ?? [];
    await deleteSupersededTagRecords(destination, copy.id, written, older);
  }
  return { carried: [...source.tags] };
}
