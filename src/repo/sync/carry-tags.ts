/**
 * Tags set after the fact follow a snapshot to its copies. A copy's manifest is the source's
 * (its tags as backed up); the tags `coffer tag` set on the source are a `tags` note there
 * (snapshot-tags.ts), and sync writes one on the copy, with the same tags and the same time,
 * when the source's is newer than any the copy has and the tags differ. So a hold set on the
 * source before or after the first sync reaches the copies (an offsite `forget --keep-tag`
 * sees it), and a copy retagged at the destination since keeps its tags until the source is
 * tagged again (the newest note wins across repositories as within one). Nothing is deleted.
 */
import type { Repository } from '../repository.js';
import { addSnapshotNote } from '../snapshot-notes.js';
import { TAGS_NOTE } from '../snapshot-tags.js';
import type { Snapshot } from '../snapshots.js';

/** Writes the source's tags on `copy` when they should follow (above); returns the tags written, or null. */
export async function carryTags(destination: Repository, source: Snapshot, copy: Snapshot): Promise<string[] | null> {
  const set = source.retagged;
  if (set === undefined) return null;
  if (copy.retagged !== undefined && copy.retagged.time >= set.time) return null;
  if (copy.tags.length === source.tags.length && copy.tags.every((tag, i) => tag === source.tags[i])) return null;
  await addSnapshotNote(destination, copy.id, TAGS_NOTE, { tags: source.tags }, new Date(set.time));
  return [...source.tags];
}
