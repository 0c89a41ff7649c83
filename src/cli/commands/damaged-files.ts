import { CofferError } from '../../errors/index.js';
import { loadSnapshot, type AffectedRange, type Repository } from '../../repo/index.js';
import { affectedFilesOfSnapshot, type VolumeDamage } from '../../restore/index.js';

/**
 * Affected disks whose files are looked up, in the order verify lists them: one damaged chunk
 * is often shared by every snapshot of a VM, which then name the same files, and each lookup
 * walks the filesystems' metadata.
 */
export const MAX_DISKS_LOOKED_UP = 10;

/** What damage does to the files of one affected snapshot disk. */
export interface DamagedFiles {
  /** Per volume that holds damaged bytes (absent when not looked up). */
  files?: VolumeDamage[];
  /** Why the files were not named. */
  filesProblem?: string;
}

/**
 * Names the files each affected snapshot disk loses (see restore's affectedFilesOfSnapshot),
 * for the first {@link MAX_DISKS_LOOKED_UP} entries. Damage is reported, not thrown.
 */
export async function lookUpDamagedFiles(repo: Repository, affected: readonly AffectedRange[], options: { signal?: AbortSignal } = {}): Promise<DamagedFiles[]> {
  const out: DamagedFiles[] = [];
  for (const [i, hit] of affected.entries()) {
    if (i >= MAX_DISKS_LOOKED_UP) {
      out.push({ filesProblem: `not looked up (files are named for the first ${MAX_DISKS_LOOKED_UP} affected disks only)` });
      continue;
    }
    try {
      const snapshot = await loadSnapshot(repo, hit.snapshot);
      if (snapshot.files !== undefined) {
        out.push({}); // a file snapshot's affected entry is already the file (or the folder whose tree is damaged)
        continue;
      }
      const ranges = hit.ranges.map((r) => ({ offset: r.start, length: r.end - r.start }));
      out.push({ files: await affectedFilesOfSnapshot(repo, snapshot, { disk: hit.disk, ranges, ...(options.signal !== undefined ? { signal: options.signal } : {}) }) });
    } catch (error) {
      if (!(error instanceof CofferError) || error.code === 'E_INTERRUPTED') throw error;
      out.push({ filesProblem: `the files cannot be named: ${withoutVerifyAdvice(error.message)}` });
    }
  }
  return out;
}

/** Text lines (indented) naming the files of one affected disk; `rangeIndex` limits them to the files of one of its ranges. */
export function renderDamagedFiles(found: DamagedFiles, rangeIndex?: number): string[] {
  if (found.filesProblem !== undefined) return [`  files: ${found.filesProblem}`];
  const lines: string[] = [];
  for (const v of found.files ?? []) {
    const where = v.filesystem === undefined ? v.volume : `${v.volume} ${v.filesystem}`;
    if (v.problem !== undefined) {
      if (rangeIndex === undefined) lines.push(`  ${where}: files cannot be named: ${withoutVerifyAdvice(v.problem)}`);
      continue;
    }
    const files = rangeIndex === undefined ? v.files : v.files.filter((f) => f.hits.includes(rangeIndex));
    for (const f of files) {
      const kind = f.type === 'directory' ? 'folder ' : f.type === 'symlink' ? 'link ' : '';
      const parts: string[] = [];
      if (f.metadata !== undefined) parts.push(`its ${f.metadata.join(', ')}: all of it`);
      if (f.ranges.length > 0) parts.push(`bytes ${f.ranges.slice(0, 4).map((r) => `${r.offset}-${r.offset + r.length - 1}`).join(', ')}${f.ranges.length > 4 ? ` and ${f.ranges.length - 4} more ranges` : ''}`);
      lines.push(`  FILE ${where}: ${kind}${f.path} (${parts.join('; ')})`);
    }
    if (rangeIndex === undefined) {
      for (const u of v.unknown) lines.push(`  ${where}: ${u.path} cannot be read: ${u.error}; what is below it is unknown`);
      if (v.truncated) lines.push(`  ${where}: stopped looking after ${v.files.length} files: more may be affected`);
    }
  }
  return lines;
}

/**
 * A reader's error without the advice it gives a restore ("…; run 'coffer verify'"): here
 * verify (or test-restore) is already the command running, and the damage it names is the
 * reason the files cannot be named (the volume's own metadata lies in a damaged chunk).
 */
function withoutVerifyAdvice(message: string): string {
  return message.replace(/; run 'coffer verify'$/, '');
}
