import { CofferError, isCofferError } from '../errors/index.js';
import { DiskIndexReader } from './disk-index.js';
import { entryId, isLocatedEntry } from './format/located-entry.js';
import type { DiskRecord } from './format/manifest.js';
import type { Snapshot } from './snapshots.js';
import type { Repository } from './repository.js';

/** One block of one disk of one snapshot, as {@link walkBlocks} visits it. */
export interface BlockVisit {
  snapshot: Snapshot;
  disk: DiskRecord;
  block: number;
  /** Bytes of the disk this block covers. */
  offset: number;
  length: number;
  /** The 32-byte entry: the chunk id (all zeros for a zero block). */
  entry: Buffer;
  /** Format 2: the 80-byte located entry (format/located-entry.ts) the id is the start of. */
  located: Buffer | undefined;
}

/** An index page that could not be read, with the range of the disk it covers. */
export interface PageDamage {
  snapshot: Snapshot;
  disk: DiskRecord;
  page: string;
  offset: number;
  length: number;
  error: CofferError;
}

/**
 * Visits every block of every disk of `snapshots`, page by page (one page in memory at a
 * time). Pages that are missing or corrupt are reported to `onPageDamage` and skipped.
 *
 * With `distinctPages`, a page whose id was already read intact in this walk is not visited
 * again: for a caller that only collects the chunks named (verify), the same page names the
 * same chunks. Unchanged stretches of a disk are the same pages in every snapshot, and a thin
 * disk's empty stretches are one page of zeros repeated (a 1 TiB disk: 1,024 times), so this
 * makes the walk follow what is distinct. Damaged pages are reported at every occurrence.
 */
export async function walkBlocks(
  repo: Repository,
  snapshots: readonly Snapshot[],
  visit: (block: BlockVisit) => void,
  onPageDamage: (damage: PageDamage) => void,
  options: { distinctPages?: boolean } = {},
): Promise<void> {
  const visited = options.distinctPages === true ? new Set<string>() : undefined;
  for (const snapshot of snapshots) {
    for (const disk of snapshot.disks) {
      const reader = new DiskIndexReader(repo, disk, 1);
      const pageBytes = disk.blockSize * disk.entriesPerPage;
      for (let page = 0; page < disk.pages.length; page++) {
        const pageId = disk.pages[page] as string;
        if (visited?.has(pageId) === true) continue;
        let entries: Buffer[];
        try {
          entries = await reader.rawPage(page);
        } catch (error) {
          if (isCofferError(error, 'E_MISSING_OBJECT') || isCofferError(error, 'E_CORRUPT_OBJECT')) {
            const offset = page * pageBytes;
            onPageDamage({ snapshot, disk, page: disk.pages[page] as string, offset, length: Math.min(pageBytes, disk.size - offset), error });
            continue;
          }
          throw error;
        }
        const expected = Math.min(disk.entriesPerPage, Math.ceil(disk.size / disk.blockSize) - page * disk.entriesPerPage);
        if (entries.length !== expected) {
          const offset = page * pageBytes;
          const error = new CofferError('E_CORRUPT_OBJECT', `index page ${disk.pages[page]} has ${entries.length} entries, expected ${expected}`);
          onPageDamage({ snapshot, disk, page: disk.pages[page] as string, offset, length: Math.min(pageBytes, disk.size - offset), error });
          continue;
        }
        visited?.add(pageId);
        entries.forEach((entry, i) => {
          const block = page * disk.entriesPerPage + i;
          const offset = block * disk.blockSize;
          visit({ snapshot, disk, block, offset, length: Math.min(disk.blockSize, disk.size - offset), entry: entryId(entry), located: isLocatedEntry(entry) ? entry : undefined });
        });
      }
    }
  }
}
