import type { ObjectId } from './codec.js';
import { decodeIndexPage, encodeIndexPage, isZeroEntry, LOCATED_INDEX_ENTRY_SIZE } from './format/index-page.js';
import { entryId } from './format/located-entry.js';
import type { DiskRecord } from './format/manifest.js';
import type { Repository } from './repository.js';

/**
 * Random access to the block entries of one disk of a snapshot, loading index pages on
 * demand and keeping the few most recent ones (sequential readers touch one page at a time,
 * so memory stays at `cachedPages × 128 KiB` whatever the disk size).
 */
export class DiskIndexReader {
  private readonly cache = new Map<number, Promise<{ ids: Buffer[]; raw: Buffer[] }>>();

  constructor(
    private readonly repo: Repository,
    readonly disk: DiskRecord,
    private readonly cachedPages = 4,
  ) {}

  get blockCount(): number {
    return Math.ceil(this.disk.size / this.disk.blockSize);
  }

  /** The 32-byte chunk id of block `index` (all zeros for a zero block). */
  async entry(index: number): Promise<Buffer> {
    return (await this.entries(index)).id;
  }

  /**
   * The stored entry of block `index`: the 32-byte id (layout 1), or the 80-byte located
   * entry (layout 2, format/located-entry.ts) whose first 32 bytes are the id.
   */
  async rawEntry(index: number): Promise<Buffer> {
    return (await this.entries(index)).raw;
  }

  private async entries(index: number): Promise<{ id: Buffer; raw: Buffer }> {
    if (!Number.isInteger(index) || index < 0 || index >= this.blockCount) throw new RangeError(`block ${index} is outside disk ${this.disk.name}`);
    const pageNumber = Math.floor(index / this.disk.entriesPerPage);
    const page = await this.decodedPage(pageNumber);
    const id = page.ids[index % this.disk.entriesPerPage];
    const raw = page.raw[index % this.disk.entriesPerPage];
    if (id === undefined || raw === undefined) throw new RangeError(`page ${pageNumber} of disk ${this.disk.name} is short`);
    return { id, raw };
  }

  /** The 32-byte chunk ids of one page. */
  async page(pageNumber: number): Promise<Buffer[]> {
    return (await this.decodedPage(pageNumber)).ids;
  }

  /** The stored entries of one page (see {@link rawEntry}). */
  async rawPage(pageNumber: number): Promise<Buffer[]> {
    return (await this.decodedPage(pageNumber)).raw;
  }

  private decodedPage(pageNumber: number): Promise<{ ids: Buffer[]; raw: Buffer[] }> {
    let page = this.cache.get(pageNumber);
    if (page === undefined) {
      const hex = this.disk.pages[pageNumber];
      if (hex === undefined) throw new RangeError(`disk ${this.disk.name} has no page ${pageNumber}`);
      page = this.repo.getIndexPage(Buffer.from(hex, 'hex')).then((bytes) => {
        const raw = decodeIndexPage(bytes, hex);
        return { raw, ids: raw.map(entryId) };
      });
      page.catch(() => this.cache.delete(pageNumber));
      this.cache.set(pageNumber, page);
      while (this.cache.size > this.cachedPages) this.cache.delete(this.cache.keys().next().value as number);
    }
    return page;
  }
}

/**
 * Collects block entries as a backup produces them (in any order) and stores each index
 * page as soon as all its entries are known, so only the pages in progress are in memory.
 */
export class DiskIndexWriter {
  private readonly pending = new Map<number, { entries: Buffer[]; filled: number }>();
  private readonly pageIds: (string | undefined)[];
  private readonly stores: Promise<void>[] = [];
  /** Pages being encoded, looked up and put: what {@link room} bounds. */
  private readonly storing = new Set<Promise<void>>();
  /** The id of a page of only zero entries, by its entry count: stored once per disk. */
  private readonly zeroPages = new Map<number, Promise<{ id: ObjectId; bytesStored: number }>>();
  /** Bytes the new index pages added to the repository. */
  bytesStored = 0;

  constructor(
    private readonly repo: Repository,
    readonly size: number,
    readonly blockSize: number,
    readonly entriesPerPage: number,
  ) {
    this.pageIds = new Array(Math.ceil(Math.ceil(size / blockSize) / entriesPerPage));
    this.located = repo.config.version === 2;
  }

  /** Format 2: pages of located entries. */
  private readonly located: boolean;

  get blockCount(): number {
    return Math.ceil(this.size / this.blockSize);
  }

  /**
   * Records the entry of block `index`; stores its page when complete. In a format 2
   * repository entries are located (80 bytes); a 32-byte zero entry is widened to 80 zeros.
   */
  set(index: number, entry: ObjectId): void {
    if (this.located && entry.length !== LOCATED_INDEX_ENTRY_SIZE) {
      if (!isZeroEntry(entry)) throw new Error(`block ${index}: a format 2 index takes located entries`);
      entry = LOCATED_ZERO_ENTRY;
    }
    const pageNumber = Math.floor(index / this.entriesPerPage);
    const pageLength = Math.min(this.entriesPerPage, this.blockCount - pageNumber * this.entriesPerPage);
    let page = this.pending.get(pageNumber);
    if (page === undefined) {
      page = { entries: new Array<Buffer>(pageLength), filled: 0 };
      this.pending.set(pageNumber, page);
    }
    if (page.entries[index % this.entriesPerPage] !== undefined) throw new Error(`block ${index} recorded twice`);
    page.entries[index % this.entriesPerPage] = entry;
    page.filled += 1;
    if (page.filled === pageLength) {
      this.pending.delete(pageNumber);
      const entries = page.entries;
      let stored: Promise<{ id: ObjectId; bytesStored: number }>;
      if (entries.every((e) => e === LOCATED_ZERO_ENTRY || isZeroEntry(e))) {
        // A sparse disk's pages of zeros are one page: encoded and stored once, not once
        // per 4,096 blocks (a 1 TiB thin disk has 1,024 of them).
        const first = this.zeroPages.get(pageLength);
        stored = first?.then(({ id }) => ({ id, bytesStored: 0 })) ?? this.repo.putIndexPage(encodeIndexPage(entries));
        if (first === undefined) this.zeroPages.set(pageLength, stored);
      } else {
        stored = this.repo.putIndexPage(encodeIndexPage(entries));
      }
      const done = stored.then(({ id, bytesStored }) => {
        this.pageIds[pageNumber] = id.toString('hex');
        this.bytesStored += bytesStored;
      });
      this.stores.push(done);
      const settled = done.then(
        () => void this.storing.delete(settled),
        () => void this.storing.delete(settled),
      );
      this.storing.add(settled);
    }
  }

  /**
   * Resolves once fewer than {@link PAGES_IN_FLIGHT} pages are being stored. A backup awaits it
   * before each group of blocks: blocks settled without reading (zeros, unchanged blocks of
   * an incremental with change tracking) complete pages faster than they are stored, and each
   * waiting page holds its encoded bytes (4,096 entries: 320 KiB in format 2). Without the
   * bound a 1 TiB thin disk queued its whole index, 320 MiB.
   */
  async room(): Promise<void> {
    while (this.storing.size >= PAGES_IN_FLIGHT) await Promise.race(this.storing);
  }

  /** Waits for every page to be stored and returns their ids in order. */
  async finish(): Promise<string[]> {
    await Promise.all(this.stores);
    const missing = this.pageIds.findIndex((id) => id === undefined);
    if (missing >= 0 || this.pending.size > 0) throw new Error(`index page ${missing} of a disk was never completed`);
    return this.pageIds as string[];
  }
}

/** Index pages stored at once by one disk's writer (see {@link DiskIndexWriter.room}). */
const PAGES_IN_FLIGHT = 8;

/** The located entry of a zero block: 80 zero bytes. */
const LOCATED_ZERO_ENTRY = Buffer.alloc(LOCATED_INDEX_ENTRY_SIZE);
