import { lstatSync } from 'node:fs';
import type { AccountNames } from './account-names.js';
import type { Excludes } from './excludes.js';
import { listDirectory, type DirectoryScan } from './scan-directory.js';
import { byUtf8Bytes, listingSeed, subtreeDigest } from './subtree-digest.js';

/** Listings held at most, in their bytes (names and numbers, {@link DirectoryScan.bytes}): ≈100,000 entries. */
const PREFETCH_BYTES = 16 * 1024 * 1024;

/** Directories listed at once, as the walk does (backup-files.ts, SCANS_IN_FLIGHT). */
const PREFETCH_CONCURRENCY = 4;

/**
 * Directories digested at most (each kept as a path and a digest, ≈ 200 bytes: ≈ 50 MiB).
 * Past it the subtrees listed whole keep their digests and nothing more is listed for them.
 */
const MAX_DIGESTED_DIRECTORIES = 250_000;

/** A directory queued to be listed: where its walk started (the device) and, when digesting, who waits for its digest. */
interface Queued {
  path: string;
  rootDev: bigint | undefined;
  parent: Digesting | undefined;
  name: string;
}

/** A directory listed, waiting for its subdirectories' subtree digests. */
interface Digesting {
  path: string;
  parent: Digesting | undefined;
  name: string;
  /** Its listing's digest; undefined when its subtree can have none (see {@link ListingPrefetch.subtreeDigests}). */
  own: string | undefined;
  /** Subdirectories descended into, in tree order, and their digests as they come. */
  children: string[];
  digests: Map<string, string | undefined>;
  waiting: number;
}

/**
 * Directories listed ahead of a file backup's walk, while the repository opens: deriving its
 * key (scrypt on libuv's pool) and reading its snapshots and index take the first ~0.5 s of
 * `coffer backup --files`, the main thread idle meanwhile, and the walk of an incremental is
 * mostly listings. Lists the given roots and every subdirectory below them the walk descends
 * into (not excluded ones, not below a tagged cache, not across a mount point with
 * --one-file-system), breadth first, {@link PREFETCH_CONCURRENCY} at once. Keeps listings
 * until {@link PREFETCH_BYTES} of them were made; the walk {@link take}s a listing instead of
 * listing the directory again; a directory it asks for first is left to it, with everything
 * below it.
 *
 * Given the account names, it also computes the subtree digest of every directory as the
 * listings land ({@link subtreeDigests}), bottom-up, and lists on past the kept listings'
 * budget for them (dropping those listings) until the tree is done, unless told that no
 * digest is wanted ({@link digestsUnneeded}: a full backup, which then lists only ahead of its walk).
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
  private readonly queue: (Queued | undefined)[] = [];
  /** Paths asked for before they were listed here: the asker lists them (and what is below). */
  private readonly claimed = new Set<string>();
  private next = 0;
  private inFlight = 0;
  private keptBytes = 0;
  private stopped = false;
  /** Directories whose listing was started, taken or not. */
  private started = 0;
  /** Callers of {@link whenIdle} waiting. */
  private idle: (() => void)[] = [];
  /** Whether subtree digests are being computed (account names given, not told otherwise, under the limit). */
  private digesting: boolean;
  /** Digests found so far (a map handed out by subtreeDigests() is never cleared afterwards). */
  private digests = new Map<string, string>();
  private readonly seeds = new Map<string, Buffer>();

  constructor(
    roots: readonly string[],
    private readonly options: { excludes?: Excludes | undefined; accounts?: AccountNames | undefined; maxBytes?: number; concurrency?: number; maxDirectories?: number } = {},
  ) {
    this.digesting = options.accounts !== undefined;
    // `/` given: the walk seeds each top-level directory with its own device, and covers every other path.
    const walked = roots.includes('/') ? ['/'] : roots;
    for (const path of walked) this.queue.push({ path, rootDev: path === '/' ? undefined : deviceOf(path), parent: undefined, name: '' });
    this.pump();
  }

  /** The account names the digests are seeded with (the walk records the same). */
  get accounts(): AccountNames | undefined {
    return this.options.accounts;
  }

  /** The listing of `path` when it was prefetched (or is being), handed over once: the walk owns it then. */
  take(path: string): Promise<DirectoryScan> | undefined {
    const listing = this.listings.get(path);
    if (listing !== undefined) this.listings.delete(path);
    else if (!this.stopped) this.claimed.add(path); // the caller lists it: never here
    return listing;
  }

  /**
   * The subtree digest of every directory below the roots whose whole subtree was listed here
   * and can be recorded: none where a listing failed or was left to the walk, where an entry
   * could not be stat'ed or a file has several names (a backup records no listing for those),
   * or a mount point is left out; nor above them. Resolves once the listing is done (empty
   * when no account names were given or digests were declared unneeded).
   */
  async subtreeDigests(): Promise<Map<string, string>> {
    await this.whenIdle();
    return this.digests;
  }

  /** No digest will be asked for (a full backup): lists no further than the kept listings' budget, and drops the pending digests. */
  digestsUnneeded(): void {
    this.digesting = false;
    this.digests = new Map();
    this.pump();
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
    this.digesting = false;
    this.listings.clear();
    this.claimed.clear();
    this.digests = new Map();
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
    while (!this.stopped && this.inFlight < concurrency && this.next < this.queue.length && (this.digesting || this.keptBytes < maxBytes)) {
      const item = this.queue[this.next] as Queued;
      this.queue[this.next++] = undefined; // what was taken off the queue is not held by it
      if (this.claimed.delete(item.path)) {
        this.finish(item.parent, item.name, undefined);
        continue;
      }
      if (this.digesting && this.started >= (this.options.maxDirectories ?? MAX_DIGESTED_DIRECTORIES)) this.digesting = false; // the subtrees still pending get no digest
      this.inFlight++;
      this.started++;
      const listing = listDirectory(item.path);
      listing.catch(() => undefined); // rejects when taken; never unhandled
      const keep = this.keptBytes < maxBytes;
      if (keep) this.listings.set(item.path, listing);
      listing
        .then(
          async (scan) => {
            if (keep) this.keptBytes += scan.bytes;
            if (!this.stopped) await this.landed(item, scan);
          },
          () => this.finish(item.parent, item.name, undefined),
        )
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

  /** A directory listed: its subdirectories queued as the walk would descend into them, its digest begun. */
  private async landed(item: Queued, scan: DirectoryScan): Promise<void> {
    const excludes = this.options.excludes;
    const prefix = item.path === '/' ? '' : item.path;
    const digesting = this.digesting;
    let complete = digesting && !scan.hasLinksOrErrors;
    const children: Queued[] = [];
    // A tagged cache keeps its tag alone: the walk descends into nothing below it.
    const tagged = excludes !== undefined && (await excludes.isTaggedCache(item.path));
    // Every name the walk backs up, one that is not UTF-8 too (decoded losslessly: names/byte-names.ts).
    for (const { name, metadata } of tagged ? [] : scan.entries(() => true, () => undefined, true)) {
      const path = `${prefix}/${name}`;
      if (excludes?.matches(path, name) === true) continue;
      if (metadata === undefined) {
        complete = false;
        continue;
      }
      const dev = item.rootDev ?? metadata.dev;
      if (excludes?.options.oneFileSystem === true && metadata.dev !== dev) {
        complete = false; // a mount point: the walk keeps it empty, without a listing
        continue;
      }
      children.push({ path, rootDev: dev, parent: undefined, name });
    }
    if (!digesting || !this.digesting) {
      for (const child of children) this.queue.push(child);
      return;
    }
    children.sort((a, b) => byUtf8Bytes(a.name, b.name));
    const node: Digesting = {
      path: item.path,
      parent: item.parent,
      name: item.name,
      own: complete ? scan.digest(this.seedFor(item.rootDev)) : undefined,
      children: children.map((c) => c.name),
      digests: new Map(),
      waiting: children.length,
    };
    for (const child of children) this.queue.push({ ...child, parent: node });
    if (node.waiting === 0) this.settle(node);
  }

  /** A directory's subtree digest is known (undefined: it has none): its parent may now be settled. */
  private finish(parent: Digesting | undefined, name: string, digest: string | undefined): void {
    if (parent === undefined || !this.digesting) return;
    parent.digests.set(name, digest);
    if (--parent.waiting === 0) this.settle(parent);
  }

  private settle(node: Digesting): void {
    let digest: string | undefined;
    if (node.own !== undefined) {
      const pairs: [string, string][] = [];
      for (const name of node.children) {
        const child = node.digests.get(name);
        if (child === undefined) break;
        pairs.push([name, child]);
      }
      if (pairs.length === node.children.length) digest = subtreeDigest(node.own, pairs);
    }
    if (digest !== undefined) this.digests.set(node.path, digest);
    this.finish(node.parent, node.name, digest);
  }

  private seedFor(rootDev: bigint | undefined): Buffer {
    const key = String(rootDev);
    const known = this.seeds.get(key);
    if (known !== undefined) return known;
    const seed = listingSeed(this.options.accounts as AccountNames, this.options.excludes, rootDev);
    this.seeds.set(key, seed);
    return seed;
  }
}

/** The device a root lies on (undefined when it cannot be stat'ed: its listing fails too, or the walk reports it). */
function deviceOf(path: string): bigint | undefined {
  try {
    return lstatSync(path, { bigint: true }).dev;
  } catch {
    return undefined;
  }
}
