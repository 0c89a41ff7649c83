import { shellWord } from '../../names/index.js';
import type { AffectedRange, SyncedFrom } from '../../repo/index.js';

/**
 * What verify tells an administrator to do about damaged snapshots that are copies made by
 * `coffer sync` (their `synced-from` notes name the source): one line per source.
 * - Chunks missing or damaged in a copy, or a file snapshot's trees (since 2026-11-30):
 *   `sync --check` (missing; a damaged tree too, since every check reads the trees) or
 *   `--read-data` (damaged chunks too) from the source sends them again into the copy
 *   (heal-copies.ts, heal-file-copies.ts).
 * - An index page of a disk snapshot's copy lost: sync does not rebuild it, so the copy is
 *   forgotten here and sync copies the snapshot anew.
 * Repositories are written as a shell needs them (a path with a space, quoted); the source
 * as its note recorded it (absolute for a local directory since 2026-11-29; older notes
 * hold the path as the sync's command line gave it).
 */
export function copyRepairAdvice(
  affected: readonly AffectedRange[],
  copiedFrom: ReadonlyMap<string, SyncedFrom>,
  isFileSnapshot: (id: string) => boolean,
  destination: string,
): string[] {
  const bySource = new Map<string, { heal: Set<string>; recopy: Set<string> }>();
  for (const hit of affected) {
    const from = copiedFrom.get(hit.snapshot);
    if (from === undefined) continue;
    let source = bySource.get(from.location);
    if (source === undefined) bySource.set(from.location, (source = { heal: new Set(), recopy: new Set() }));
    // A file snapshot's `indexDamaged` is a damaged tree, which sync --check stores again.
    (hit.indexDamaged === true && !isFileSnapshot(hit.snapshot) ? source.recopy : source.heal).add(hit.snapshot);
  }
  const to = shellWord(destination);
  const lines: string[] = [];
  for (const [location, { heal, recopy }] of bySource) {
    const named = location === '' ? 'another repository' : location;
    const from = location === '' ? 'SOURCE' : shellWord(location);
    for (const id of recopy) heal.delete(id);
    if (heal.size > 0) {
      lines.push(`${heal.size} damaged snapshot(s) are copies made by coffer sync from ${named}: 'coffer sync -r ${from} --to ${to} --check' sends what is missing here again (--read-data: what is damaged too)`);
    }
    if (recopy.size > 0) {
      const ids = [...recopy].join(' ');
      lines.push(
        `${recopy.size} damaged snapshot(s) are copies made by coffer sync from ${named} that sync cannot mend (an index page lost): forget them here ('coffer forget -r ${to} ${ids}'), then 'coffer sync -r ${from} --to ${to}' copies them anew`,
      );
    }
  }
  return lines;
}
