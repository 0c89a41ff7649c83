import type { SnapshotFiles } from '../files/snapshot-files.js';
import { affectedFiles } from '../files/affected-files.js';
import type { DiskCheck } from './report.js';

/**
 * Names, under each unreadable block of a disk, the files it holds bytes of (`files`), and
 * lists on the disk what could not be told (`filesUnknown`: a volume without a readable
 * filesystem, a folder that cannot be read). Reads only metadata. Nothing is thrown for
 * damage.
 */
export async function nameUnreadableFiles(files: SnapshotFiles, check: DiskCheck, signal?: AbortSignal): Promise<void> {
  const blocks = check.unreadable.filter((u) => u.offset >= 0);
  if (blocks.length === 0) return;
  const damage = await affectedFiles(files, { disk: check.name, ranges: blocks.map((u) => ({ offset: u.offset, length: u.length })), ...(signal !== undefined ? { signal } : {}) });
  const unknown: string[] = [];
  for (const v of damage) {
    const where = v.filesystem === undefined ? v.volume : `${v.volume} (${v.filesystem})`;
    if (v.problem !== undefined) unknown.push(`${where}: files cannot be named: ${v.problem}`);
    for (const u of v.unknown) unknown.push(`${where}: ${u.path} cannot be read: ${u.error}; what is below it is unknown`);
    if (v.truncated) unknown.push(`${where}: stopped looking after ${v.files.length} files: more may be affected`);
    for (const f of v.files) {
      for (const hit of f.hits) {
        const block = blocks[hit];
        if (block === undefined) continue;
        (block.files ??= []).push({ volume: v.volume, path: f.path, ...(f.metadata !== undefined ? { metadata: f.metadata } : {}), ranges: f.ranges });
      }
    }
  }
  if (unknown.length > 0) check.filesUnknown = unknown;
}
