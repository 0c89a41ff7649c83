import { CHUNKS_PREFIX, INDEXES_PREFIX, PACKS_PREFIX, TREES_PREFIX } from '../layout.js';
import type { TapeIndex, TapeLabel } from './tape-format.js';
import { readVolume } from './volume-reader.js';
import type { VolumeSource } from './volume-sink.js';

/** One volume as `tape list` describes it. */
export interface TapeVolumeListing {
  name: string;
  label: TapeLabel;
  final: boolean;
  /** The snapshots of the whole set (ids: manifests are encrypted, VM names are not on the tape in clear). */
  snapshots: string[];
  members: number;
  chunks: number;
  /** Packs (a format 2 repository's set, tape format version 2). */
  packs: number;
  indexPages: number;
  /** File trees (the directories of file snapshots). */
  trees: number;
  /** Bytes of the members' data. */
  bytes: number;
}

/**
 * What each volume holds, from its label and index, with no passphrase: every volume is read
 * to its end and every member's SHA-256 checked against the index (`E_TAPE_INVALID` when one
 * differs), so a listing that succeeds also says the volume reads back intact.
 */
export async function listTape(sources: readonly VolumeSource[], signal?: AbortSignal): Promise<TapeVolumeListing[]> {
  const listings: TapeVolumeListing[] = [];
  for (const source of sources) {
    const { label, index } = await readVolume(source, async () => {}, { wantData: () => false, ...(signal === undefined ? {} : { signal }) });
    const members = (index as TapeIndex).members;
    listings.push({
      name: source.name,
      label,
      final: (index as TapeIndex).final,
      snapshots: (index as TapeIndex).snapshots,
      members: members.length,
      chunks: members.filter((m) => m.name.startsWith(CHUNKS_PREFIX)).length,
      packs: members.filter((m) => m.name.startsWith(PACKS_PREFIX)).length,
      indexPages: members.filter((m) => m.name.startsWith(INDEXES_PREFIX)).length,
      trees: members.filter((m) => m.name.startsWith(TREES_PREFIX)).length,
      bytes: members.reduce((sum, m) => sum + m.size, 0),
    });
  }
  return listings;
}
