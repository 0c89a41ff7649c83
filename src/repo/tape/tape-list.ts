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

/**
 * What keeps the listed volumes from being imported as their set: volume numbers below the
 * highest one given that were not given, whether the set's last volume (its index says
 * `final`) is among them, and a volume given twice (two files or drives with the same volume
 * of the set: tape import refuses them). Volumes of several sets are judged per set. Empty
 * when the set is complete.
 */
export function missingFromSet(listings: readonly TapeVolumeListing[]): string[] {
  const sets = new Map<string, TapeVolumeListing[]>();
  for (const l of listings) sets.set(l.label.tapeSet, [...(sets.get(l.label.tapeSet) ?? []), l]);
  const problems: string[] = [];
  for (const [tapeSet, volumes] of sets) {
    const given = new Set(volumes.map((v) => v.label.sequence));
    const highest = Math.max(...given);
    const twice = [...given].filter((sequence) => volumes.filter((v) => v.label.sequence === sequence).length > 1);
    const missing: number[] = [];
    for (let sequence = 1; sequence < highest; sequence++) if (!given.has(sequence)) missing.push(sequence);
    const last = volumes.some((v) => v.final);
    if (missing.length === 0 && last && twice.length === 0) continue;
    const parts: string[] = [];
    for (const sequence of twice) parts.push(`volume ${sequence} is given twice (${volumes.filter((v) => v.label.sequence === sequence).map((v) => v.name).join(' and ')})`);
    if (missing.length > 0) parts.push(`volume${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing`);
    if (!last) parts.push(`the last volume is not among those given (volume ${highest} is not the last)`);
    problems.push(`tape set ${tapeSet.slice(0, 8)} ${missing.length > 0 || !last ? 'is incomplete' : 'cannot be imported as given'}: ${parts.join('; ')}`);
  }
  return problems;
}
