import type { Excludes } from './excludes.js';
import { listDirectory, type DirectoryScan } from './scan-directory.js';

/** Listings held at most, in their bytes (names and numbers, {@link DirectoryScan.bytes}): ≈100,000 entries. */
const PREFETCH_BYTES = 16 * 1024 * 1024;

/** Directories listed at once, as the walk does (backup-files.ts, SCANS_IN_FLIGHT). */
const PREFETCH_CONCURRENCY = 4;

/**
 * Directories listed ahead of a file backup's walk, while the repository opens: deriving its
 * key (scrypt on libuv's pool) and reading its snapshots and index take the first ~0.5 s of
 * `coffer backup --files`, the main thread idle meanwhile, and the walk of an incremental is
 * mostly listings. Lists the given roots and every subdirectory below them, breadth first,
 * {@link PREFETCH_CONCURRENCY} at once, until {@link PREFETCH_BYTES} of listings were made or
 * {@link stop} is called; excluded directories are not descended into. It goes on while the
 * walk runs, ahead of it (stopping at the walk's start was slower: the walk then waited on
 * its own listings). The walk {@link take}s a listing instead of listing the directory again;
 * a directory it asks for first is left to it, with everything below it.
 *
 * A prefetched listing is a few tenths of a second older than one the walk would make: no
 * different from a listing made when a long walk starts and its files read later (a file
 * that changes in between is found so as it is read). A listing that failed rejects when
 * taken, as the walk's own would have.
 */
export class ListingPrefetch {
  /** When the first listing started: a backup that takes these listings began then (its snapshot's time). */
  readonly startedAt = new Date();
  private readonly listings = new Map<string, Promise<DirectoryScan>>();
  private readonly queue: string[] = [];
  /** Paths asked for before they were listed here: the asker lists them (and what is below). */
  private readonly claimed = new Set<string>();
  private next = 0;
  private inFlight = 0;
  private listedBytes = 0;
  private stopped = false;
  /** Directories whose listing was started, taken or not. */
  private started = 0;
  /** Callers of {@link whenIdle} waiting. */
  private idle: (() => void)[] = [];

  constructor(
    roots: readonly string[],
    private readonly options: { excludes?: Excludes | undefined; maxBytes?: number; concurrency?: number } = {},
  ) {
    this.queue.push(...roots);
    this.pump();
  }

  /** The listing of `path` when it was prefetched (or is being), handed over once: the walk owns it then. */
  take(path: string): Promise<DirectoryScan> | undefined {
    const listing = this.listings.get(path);
    if (listing !== undefined) this.listings.delete(path);
    else if (!this.stopped) this.claimed.add(path); // the caller lists it: never here
    return listing;
  }

  /** Lists nothing more (those under way still land, to be taken). */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.next = 0;
  }

  /** Stops, and drops every listing not taken. */
  dispose(): void {
    this.stop();
    this.listings.clear();
    this.claimed.clear();
  }

  /** Resolves once nothing is being listed and nothing more will be (the tree is done, the budget spent, or stopped). */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Directories whose listing was started, taken or not. */
  get listed(): number {
    return this.started;
  }

  private pump(): void {
    const concurrency = this.options.concurrency ?? PREFETCH_CONCURRENCY;
    const maxBytes = this.options.maxBytes ?? PREFETCH_BYTES;
    while (!this.stopped && this.inFlight < concurrency && this.next < this.queue.length && this.listedBytes < maxBytes) {
      const path = this.queue[this.next++] as string;
      if (this.claimed.delete(path)) continue;
      this.inFlight++;
      this.started++;
      const listing = listDirectory(path);
      listing.catch(() => undefined); // rejects when taken; never unhandled
      this.listings.set(path, listing);
      listing
        .then((scan) => {
          this.listedBytes += scan.bytes;
          if (!this.stopped) this.enqueueSubdirectories(path, scan);
        }, () => undefined)
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
    if (this.next === this.queue.length) {
      this.queue.length = 0;
      this.next = 0;
    }
    if (this.inFlight === 0 && this.idle.length > 0) {
      const waiting = this.idle;
      this.idle = [];
      for (const resolve of waiting) resolve();
    }
  }

  private enqueueSubdirectories(path: string, scan: DirectoryScan): void {
    const prefix = path === '/' ? '' : path;
    // Names that are not UTF-8 are left to the walk, which refuses them.
    for (const { name } of scan.entries(() => true, () => undefined, true)) {
      const child = `${prefix}/${name}`;
      if (this.options.excludes?.matches(child, name) === true) continue;
      this.queue.push(child);
    }
  }
}
