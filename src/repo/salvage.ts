import { isCofferError } from '../errors/index.js';
import { DiskIndexReader, DiskIndexWriter } from './disk-index.js';
import { isZeroEntry, ZERO_ENTRY } from './format/index-page.js';
import type { DiskRecord } from './format/manifest.js';
import { acquireBackupLease } from './leases.js';
import type { Repository } from './repository.js';
import { rescueDamagedPacks } from './salvage-packs.js';
import { storedManifest } from './snapshot-tags.js';
import { saveSnapshot, type Snapshot } from './snapshots.js';

/** What a salvage zeroed, per disk, in bytes of the disk. */
export interface ZeroedRanges {
  disk: string;
  ranges: { start: number; end: number }[];
}

/**
 * Makes a restorable copy of a damaged snapshot: a new snapshot (tag `salvaged`, parent the
 * damaged one, same VM and time) whose blocks are the original's, except the blocks whose
 * chunk `isDamaged` says is bad and the blocks of index pages that cannot be read: those read
 * as zeros. What was zeroed is returned (and should be recorded). The damaged snapshot is not
 * touched. The new index pages are written under a backup lease, so a prune cannot sweep
 * them before the manifest names them. Format 2: the good chunks of the packs that hold
 * damaged ones are first saved into a new pack (salvage-packs.ts) and the copy points at
 * them there; chunks whose frame no longer opens read as zeros too.
 */
export async function salvageSnapshot(
  repo: Repository,
  snapshot: Snapshot,
  isDamaged: (entryHex: string) => boolean,
): Promise<{ snapshot: Snapshot; zeroed: ZeroedRanges[] }> {
  const started = Date.now();
  const lease = await acquireBackupLease(repo);
  try {
    const rescued = repo.config.version === 2 ? await rescueDamagedPacks(repo, snapshot, isDamaged) : undefined;
    const damaged = (hex: string): boolean => isDamaged(hex) || rescued?.lost.has(hex) === true;
    const disks: DiskRecord[] = [];
    const zeroed: ZeroedRanges[] = [];
    for (const disk of snapshot.disks) {
      const reader = new DiskIndexReader(repo, disk, 1);
      const writer = new DiskIndexWriter(repo, disk.size, disk.blockSize, disk.entriesPerPage);
      const ranges: { start: number; end: number }[] = [];
      const zero = (block: number) => {
        const start = block * disk.blockSize;
        const end = Math.min(disk.size, start + disk.blockSize);
        const last = ranges.at(-1);
        if (last !== undefined && last.end === start) last.end = end;
        else ranges.push({ start, end });
      };
      for (let page = 0; page < disk.pages.length; page++) {
        const first = page * disk.entriesPerPage;
        const count = Math.min(disk.entriesPerPage, writer.blockCount - first);
        let entries: Buffer[] | undefined;
        try {
          entries = await reader.rawPage(page);
        } catch (error) {
          if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
        }
        for (let i = 0; i < count; i++) {
          const entry = entries?.[i];
          const id = entry?.subarray(0, 32).toString('hex');
          if (entry === undefined || id === undefined || (!isZeroEntry(entry) && damaged(id))) {
            writer.set(first + i, ZERO_ENTRY);
            if (entry === undefined || !isZeroEntry(entry)) zero(first + i);
          } else writer.set(first + i, rescued?.placed.get(id) ?? entry);
        }
      }
      disks.push({ ...disk, pages: await writer.finish() });
      if (ranges.length > 0) zeroed.push({ disk: disk.name, ranges });
    }
    await lease.confirm();
    // The copy carries the tags the damaged snapshot has now (a tag record's, if one set them:
    // a hold set with `coffer tag` holds the copy too), and `salvaged`.
    const salvaged = await saveSnapshot(repo, {
      ...storedManifest(snapshot),
      tags: [...new Set([...snapshot.tags, 'salvaged'])],
      parent: snapshot.id,
      disks,
      stats: { ...snapshot.stats, bytesNew: 0, bytesStored: 0, bytesRead: 0, durationMs: Date.now() - started },
    });
    return { snapshot: salvaged, zeroed };
  } finally {
    await lease.release().catch(() => {});
  }
}
