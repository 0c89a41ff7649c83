import type { ObjectId } from './codec.js';
import { decodeIndexPage, encodeIndexPage } from './format/index-page.js';
import type { DiskRecord } from './format/manifest.js';
import type { Repository } from './repository.js';

/**
 * Random access to the block entries of one disk of a snapshot, loading index pages on
 * demand and keeping the few most recent ones (sequential readers touch one page at a time,
 * so memory stays at `cachedPages × 128 KiB` whatever the disk size).
 */
export class DiskIndexReader {
  private readonly cache = new Map<number, Promise<Buffer[]>>();

  constructor(
    private readonly repo: Repository,
    readonly disk: DiskRecord,
    private readonly cachedPages = 4,
  ) {}

  get blockCount(): number {
    return Math.ceil(this.disk.size / this.disk.blockSize);
  }

  /** The 32-byte entry of block `index` (all zeros for a zero block). */
  async entry(index: number): Promise<Buffer> {
    if (!Number.isInteger(index) || index < 0 || index >= this.blockCount) throw new RangeError(`block ${index} is outside disk ${this.disk.name}`);
    const pageNumber = Math.floor(index / this.disk.entriesPerPage);
    const entries = await this.page(pageNumber);
    const entry = entries[index % this.disk.entriesPerPage];
    if (entry === undefined) throw new RangeError(`page ${pageNumber} of disk ${this.disk.name} is short`);
    return entry;
  }

  /** All entries of one page. */
  page(pageNumber: number): Promise<Buffer[]> {
    let page = this.cache.get(pageNumber);
    if (page === undefined) {
      const hex = this.disk.pages[pageNumber];
      if (hex === undefined) throw new RangeError(`disk ${this.disk.name} has no page ${pageNumber}`);
      page = this.repo.getIndexPage(Buffer.from(hex, 'hex')).then((bytes) => decodeIndexPage(bytes, hex));
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
  /** Bytes the new index pages added to the repository. */
  bytesStored = 0;

  constructor(
    private readonly repo: Repository,
    readonly size: number,
    readonly blockSize: number,
    readonly entriesPerPage: number,
  ) {
    this.pageIds = new Array(Math.ceil(Math.ceil(size / blockSize) / entriesPerPage));
  }

  get blockCount(): number {
    return Math.ceil(this.size / this.blockSize);
  }

  /** Records the entry of block `index`; stores its page when complete. */
  set(index: number, entry: ObjectId): void {
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
      this.stores.push(
        this.repo.putIndexPage(encodeIndexPage(entries)).then(({ id, bytesStored }) => {
          this.pageIds[pageNumber] = id.toString('hex');
          this.bytesStored += bytesStored;
        }),
      );
    }
  }

  /** Waits for every page to be stored and returns their ids in order. */
  async finish(): Promise<string[]> {
    await Promise.all(this.stores);
    const missing = this.pageIds.findIndex((id) => id === undefined);
    if (missing >= 0 || this.pending.size > 0) throw new Error(`index page ${missing} of a disk was never completed`);
    return this.pageIds as string[];
  }
}
