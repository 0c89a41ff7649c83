import { CofferError } from '../../errors/index.js';
import { DiskIndexReader, isZeroEntry, type DiskRecord, type Repository } from '../../repo/index.js';
import type { ByteRange } from '../../fs/index.js';

/** What changed on one disk between two snapshots, as their disk indexes tell. */
export interface DiskChanges {
  /** Blocks whose entries differ (a grown disk's new blocks and a shrunk disk's lost blocks count when they hold data). */
  changedBlocks: number;
  /** Of those, the blocks that read as zeros in the second snapshot (discarded, trimmed, zeroed). */
  zeroedBlocks: number;
  /** Bytes of the changed blocks (the last block of a disk counts its bytes inside the disk). */
  changedBytes: number;
  /** The changed blocks as byte ranges of the disk, sorted, adjacent blocks merged. */
  ranges: ByteRange[];
  /** Index pages read (of both snapshots); pages with the same id in both are skipped unread. */
  pagesRead: number;
  pagesSkipped: number;
}

/** Index pages fetched ahead of the one compared: page reads overlap the comparison. */
const PAGES_AHEAD = 4;

/**
 * Compares disk `a` of one snapshot with disk `b` of another, block by block, through their
 * index pages only: a block changed when its chunk id differs (chunk ids are content hashes,
 * so equal ids are equal bytes; 32 zero bytes mark a block of zeros). No chunk is read. Pages
 * that are the same object in both (an incremental's unchanged stretches, a thin disk's
 * zero pages) are skipped without being read: the cost follows what changed, not the disk's
 * size. Works on both repository formats (layout 1 entries are ids, layout 2 located
 * entries start with one). Bytes past the end of the smaller disk are compared as zeros, so
 * a grown disk's new data and a shrunk disk's lost data count as changed.
 *
 * Memory: a few pages per disk ({@link PAGES_AHEAD}) and the merged ranges (one per run of
 * changed blocks). Throws `E_USAGE` when the two disks have different block sizes (their
 * indexes cannot be compared entry by entry), `E_MISSING_OBJECT`/`E_CORRUPT_OBJECT` for a
 * damaged page.
 */
export async function diskChanges(repo: Repository, a: DiskRecord, b: DiskRecord, options: { signal?: AbortSignal } = {}): Promise<DiskChanges> {
  if (a.blockSize !== b.blockSize) {
    throw new CofferError('E_USAGE', `disk ${b.name}: the snapshots store it in blocks of different sizes (${a.blockSize} and ${b.blockSize} bytes): their indexes cannot be compared`);
  }
  const out: DiskChanges = { changedBlocks: 0, zeroedBlocks: 0, changedBytes: 0, ranges: [], pagesRead: 0, pagesSkipped: 0 };
  const blockSize = a.blockSize;
  const end = Math.max(a.size, b.size);
  const note = (block: number, entryB: Buffer | undefined): void => {
    const offset = block * blockSize;
    const length = Math.min(blockSize, end - offset);
    out.changedBlocks += 1;
    out.changedBytes += length;
    if (entryB === undefined || isZeroEntry(entryB)) out.zeroedBlocks += 1;
    const last = out.ranges[out.ranges.length - 1];
    if (last !== undefined && last.offset + last.length === offset) last.length += length;
    else out.ranges.push({ offset, length });
  };
  const compare = (block: number, entryA: Buffer | undefined, entryB: Buffer | undefined): void => {
    if (entryA === undefined || entryB === undefined) {
      const present = entryA ?? entryB;
      if (present !== undefined && !isZeroEntry(present)) note(block, entryB);
    } else if (!entryA.subarray(0, 32).equals(entryB.subarray(0, 32))) {
      note(block, entryB);
    }
  };
  const readerA = new DiskIndexReader(repo, a, 1);
  const readerB = new DiskIndexReader(repo, b, 1);
  const blocks = Math.max(readerA.blockCount, readerB.blockCount);
  if (a.entriesPerPage !== b.entriesPerPage) {
    // Pages cover different stretches (a disk synced from a repository with other pages): entry by entry.
    const cachedA = new DiskIndexReader(repo, a, 2);
    const cachedB = new DiskIndexReader(repo, b, 2);
    for (let block = 0; block < blocks; block++) {
      if (block % 4096 === 0) checkAborted(options.signal);
      compare(block, block < cachedA.blockCount ? await cachedA.entry(block) : undefined, block < cachedB.blockCount ? await cachedB.entry(block) : undefined);
    }
    out.pagesRead = a.pages.length + b.pages.length;
    return out;
  }
  const perPage = a.entriesPerPage;
  const pages = Math.max(a.pages.length, b.pages.length);
  const fetch = (reader: DiskIndexReader, disk: DiskRecord, page: number): Promise<Buffer[]> | undefined => {
    if (page >= disk.pages.length) return undefined;
    out.pagesRead += 1;
    return checkedPage(reader, disk, page);
  };
  const ahead = new Map<number, Promise<[Buffer[] | undefined, Buffer[] | undefined]>>();
  const request = (page: number): void => {
    if (page >= pages || ahead.has(page)) return;
    if (a.pages[page] !== undefined && a.pages[page] === b.pages[page]) return;
    const both = Promise.all([fetch(readerA, a, page), fetch(readerB, b, page)]);
    both.catch(() => {}); // awaited in order below; a failure ahead must not be unhandled
    ahead.set(page, both);
  };
  for (let page = 0; page < pages; page++) {
    checkAborted(options.signal);
    for (let next = page; next <= page + PAGES_AHEAD; next++) request(next);
    const pending = ahead.get(page);
    if (pending === undefined) {
      // The same page object in both: the same entries (pages are content-addressed).
      out.pagesSkipped += 2;
      continue;
    }
    ahead.delete(page);
    const [entriesA, entriesB] = await pending;
    const count = Math.max(entriesA?.length ?? 0, entriesB?.length ?? 0);
    for (let i = 0; i < count; i++) compare(page * perPage + i, entriesA?.[i], entriesB?.[i]);
  }
  return out;
}

/** One page's chunk ids, checked to hold as many entries as the disk says it should. */
async function checkedPage(reader: DiskIndexReader, disk: DiskRecord, page: number): Promise<Buffer[]> {
  const entries = await reader.page(page);
  const expected = Math.min(disk.entriesPerPage, reader.blockCount - page * disk.entriesPerPage);
  if (entries.length !== expected) {
    throw new CofferError('E_CORRUPT_OBJECT', `index page ${disk.pages[page]} of disk ${disk.name} has ${entries.length} entries, expected ${expected}`, { subject: { object: disk.pages[page] as string } });
  }
  return entries;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new CofferError('E_INTERRUPTED', 'interrupted while comparing disk indexes');
}

