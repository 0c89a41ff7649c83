import { lstat } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import { SharedBufferPool, Slots } from '../../concurrency/index.js';
import { CofferError } from '../../errors/index.js';
import {
  acquireBackupLease,
  compareNames,
  getFileTree,
  isSafeEntryName,
  listQuarantined,
  putFileTree,
  saveSnapshot,
  type FileWarning,
  type HeldLease,
  type Repository,
  type ContentPiece,
  type Snapshot,
  type TreeEntry,
} from '../../repo/index.js';
import { ListingPrefetch, listDirectory, listingSeed, readAccountNames, readFileMetadata, readFileMetadataSync, readXattrs, subtreeDigest, type AccountNames, type DirectoryScan, type Excludes, type FileMetadata } from '../../source/index.js';
import { hostPath, printableName } from '../../names/index.js';
import { KnownChunks } from '../known-chunks.js';
import { ChunkStore, type FileBackupFigures } from './chunk-store.js';
import type { ChunkSizes } from '../../repo/index.js';
import { isSmallFile, readFileContent, SMALL_FILE_BYTES, type FileRead } from './read-file.js';

/** Progress of a file backup. */
export interface FileBackupProgress {
  entries: number;
  bytesRead: number;
  bytesNew: number;
}

/** How to back up files. */
export interface FileBackupOptions {
  /** The name the snapshots are grouped under (the machine backed up: `--host`). */
  host: string;
  /** Paths to back up (made absolute); or none with `stdin`. */
  paths: string[];
  /** One stream instead of paths: stored as a single file of this name. */
  stdin?: { name: string; stream: AsyncIterable<Uint8Array> };
  /** The snapshot compared with; undefined: the latest file snapshot of the same host and paths. */
  parent?: Snapshot | null;
  /** Read every file, even those unchanged since the parent. */
  force?: boolean;
  excludes?: Excludes;
  /**
   * Directories listed ahead, while the repository opened (the CLI starts it after the
   * pre-backup hook) and on ahead of the walk: the walk takes their listings instead of
   * listing them again; disposed of when the walk ends. Made with the same `excludes`.
   */
  listings?: ListingPrefetch;
  tags?: string[];
  time?: Date;
  lease?: HeldLease;
  signal?: AbortSignal;
  clock?: () => Date;
  onProgress?: (progress: FileBackupProgress) => void;
  /** Each problem as it is met (also recorded in the snapshot). */
  onWarning?: (warning: FileWarning) => void;
  /**
   * Chunk sizes other than `FILE_CHUNK_SIZES`, for measuring them (bench/chunk-sizes.ts);
   * the CLI never sets it: other sizes cut other chunks, which deduplicate with nothing stored before.
   */
  chunkSizes?: ChunkSizes;
}

/**
 * Files read at once per worker thread: reading overlaps hashing, and each file in flight
 * holds one 4 MiB window (2 × the largest chunk), so 2 threads read 4 files in 16 MiB.
 */
const FILES_PER_THREAD = 2;

/**
 * Small files (read whole, read-file.ts) in flight at once, whatever the threads: enough for
 * a batch of chunks per worker task to be worth its round trip. Each is read into one of as
 * many buffers of SMALL_FILE_BYTES in shared memory (32 MiB, allocated once): they cross to
 * the workers without a copy and leave no garbage per file.
 */
const SMALL_FILES_IN_FLIGHT = 32;

/**
 * Directories listed and stat'ed at once on libuv's pool (listDirectory): the walk starts
 * every subdirectory of a directory together, and unbounded their scans would queue ahead of
 * the file and repository reads that share the pool's four threads. Four since directories
 * whose listing is unchanged cost the main thread next to nothing: with two, the bench's
 * incremental left the main thread idle 30-50 % of the time waiting for listings (1.70-1.95 s
 * against 1.60-1.85 with four, alternating; eight no better).
 */
const SCANS_IN_FLIGHT = 4;

/**
 * Backs up directory trees into a file snapshot (manifest version 2): every directory
 * becomes a tree object (sorted entries with full metadata), every file's content
 * content-defined chunks. A file whose size, mtime, ctime and inode match its entry in the
 * parent snapshot reuses that entry's content unread (unless `force`). A file that changes
 * or vanishes while read, or cannot be read, is recorded as a warning and the backup goes
 * on. Hard links are found by (device, inode) within the snapshot. A name (or symlink
 * target) that is not UTF-8 is kept as its bytes (names/byte-names.ts: decoded losslessly,
 * every host call given hostPath). The manifest is written last, as for images.
 */
export async function backupFiles(repo: Repository, options: FileBackupOptions): Promise<Snapshot> {
  if (options.lease !== undefined) return backupWithLease(repo, options, options.lease);
  const lease = await acquireBackupLease(repo, options.signal ? { signal: options.signal } : {});
  try {
    return await backupWithLease(repo, options, lease);
  } finally {
    await lease.release().catch(() => {});
  }
}

/** The latest file snapshot of `host` that backed up exactly `paths` (or the same stdin name). */
export function fileParentOf(snapshots: readonly Snapshot[], host: string, paths: readonly string[], stdinName?: string): Snapshot | null {
  const key = JSON.stringify([...paths].sort());
  const same = snapshots.filter((s) => s.files !== undefined && s.vm === host && JSON.stringify([...s.files.paths].sort()) === key && s.files.stdinName === stdinName);
  return same.at(-1) ?? null;
}

/**
 * Refuses a backup none of whose paths exists (E_SOURCE_UNREADABLE, exit 3, nothing saved), as
 * restic does: an empty snapshot of a typo, or of a share that was not mounted that night,
 * would count as a backup for retention (`--keep-last 7` after a week of them keeps none of
 * the real ones). One path missing among others is a `vanished` warning of that snapshot.
 */
async function refuseWhenNoPathExists(paths: readonly string[]): Promise<void> {
  const missing: string[] = [];
  for (const path of paths) {
    try {
      await lstat(hostPath(path));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return; // unreadable, not absent: the walk reports it
      missing.push(path);
    }
  }
  const listed = missing.map((p) => printableName(p)).join(', ');
  throw new CofferError('E_SOURCE_UNREADABLE', `${missing.length === 1 ? `${listed} does not exist` : `none of ${listed} exists`}: nothing to back up, no snapshot saved`, { subject: { path: missing[0] } });
}

async function backupWithLease(repo: Repository, options: FileBackupOptions, lease: HeldLease): Promise<Snapshot> {
  const clock = options.clock ?? (() => new Date());
  // Listings made ahead were the backup's first reads: it started with them.
  const started = options.listings?.startedAt ?? clock();
  const paths = [...new Set(options.paths.map((p) => resolve(p)))].sort();
  if ((paths.length === 0) === (options.stdin === undefined)) throw new CofferError('E_USAGE', 'give paths to back up, or a stream from standard input');
  if (options.stdin === undefined) await refuseWhenNoPathExists(paths);
  const parent = options.parent === undefined ? null : options.parent;
  const figures: FileBackupFigures = { bytesRead: 0, bytesNew: 0, bytesStored: 0 };
  const threads = repo.pool.threads;
  const windows = new SharedBufferPool(ChunkStore.windowSize(options.chunkSizes), threads * FILES_PER_THREAD);
  const store = new ChunkStore(repo, windows, new KnownChunks(), await listQuarantined(repo), figures, options.chunkSizes);
  const walker = new TreeWalker(repo, store, figures, options, options.listings?.accounts ?? (await readAccountNames()));
  let root: string;
  try {
    root = options.stdin !== undefined ? await walker.stdinTree(options.stdin, clock()) : await walker.rootTree(paths, parent);
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'backup interrupted before its snapshot was recorded');
    await store.finish(); // format 2: the last packs and the index segments, before the manifest
  } catch (error) {
    await store.abandon(error);
    throw error;
  } finally {
    options.listings?.dispose();
  }
  await lease.confirm();
  const time = options.time ?? started;
  return saveSnapshot(repo, {
    version: 2,
    vm: options.host,
    time: time.toISOString(),
    hostname: osHostname(),
    tags: options.tags ?? [],
    parent: parent?.id ?? null,
    definition: null,
    disks: [],
    stats: { bytesLogical: walker.bytesLogical, bytesRead: figures.bytesRead, bytesNew: figures.bytesNew, bytesStored: figures.bytesStored, durationMs: Math.max(0, clock().getTime() - started.getTime()) },
    files: {
      tree: root,
      paths: options.stdin !== undefined ? [] : paths,
      ...(options.stdin !== undefined ? { stdinName: options.stdin.name } : {}),
      entries: walker.entries,
      warnings: walker.warnings,
    },
  });
}

/** A path given to back up, or a directory above one (`/home` for `/home/ann`). */
interface PathNode {
  /** True when the path itself was given: everything below it is backed up. */
  given: boolean;
  children: Map<string, PathNode>;
}

/** Walks the trees, depth first, writing each directory's tree once its entries are done. */
class TreeWalker {
  entries = 0;
  bytesLogical = 0;
  readonly warnings: FileWarning[] = [];
  private readonly hardLinks = new Map<string, { group: number; content: Promise<FileRead | null> }>();
  private readonly slots: Slots;
  private readonly scans = new Slots(SCANS_IN_FLIGHT);
  private smallBuffers: SharedBufferPool | undefined;
  /** Directories (their paths) an entry of which was warned about: their listing is not recorded (see ScanSummary). */
  private readonly warnedDirectories = new Set<string>();
  /** What, besides a directory's listing, decides how its entries are recorded: the seed of every listing's digest (by the device of the walk's root). */
  private readonly seeds = new Map<string, Buffer>();
  /** An incremental's subtree digests by path, from listings made before the walk (ListingPrefetch.subtreeDigests): none for a full backup. */
  private subtrees: Map<string, string> | undefined;

  constructor(
    private readonly repo: Repository,
    private readonly store: ChunkStore,
    private readonly figures: FileBackupFigures,
    private readonly options: FileBackupOptions,
    private readonly accounts: AccountNames,
  ) {
    this.slots = new Slots(repo.pool.threads * FILES_PER_THREAD);
  }

  private warn(path: string, message: string): void {
    const slash = path.lastIndexOf('/');
    this.warnedDirectories.add(slash <= 0 ? '/' : path.slice(0, slash));
    const warning = { path, message };
    this.warnings.push(warning);
    this.options.onWarning?.(warning);
  }

  /** The root tree: the given paths with the directories above them. */
  async rootTree(paths: string[], parent: Snapshot | null): Promise<string> {
    const top: PathNode = { given: false, children: new Map() };
    for (const path of paths) {
      let node = top;
      for (const name of path.split('/').filter(Boolean)) {
        let child = node.children.get(name);
        if (child === undefined) node.children.set(name, (child = { given: false, children: new Map() }));
        node = child;
      }
      node.given = true;
    }
    if (parent !== null && this.options.force !== true) {
      // The parent's root tree is read meanwhile: the first tree read opens the repository's
      // reader of trees (its index), a few tenths of a second the listings then hide.
      const root = parent.files === undefined ? undefined : this.parentTree(parent.files.tree);
      this.subtrees = await this.subtreeDigests(paths);
      await root;
    } else this.options.listings?.digestsUnneeded();
    await this.checkNestedPaths('', top);
    if (top.given) return (await this.directoryTree('/', parent === null ? undefined : parent.files?.tree, { scan: undefined, subtree: undefined }, undefined)).tree;
    return this.pathTree('', top, parent?.files?.tree);
  }

  /**
   * A given path inside another given path is backed up with the outer one, so its walk never
   * names it: one that does not exist is warned about here, as a missing top-level path is
   * (`vanished`, exit 18), not silently dropped.
   */
  private async checkNestedPaths(path: string, node: PathNode, inGiven = false): Promise<void> {
    for (const [name, child] of node.children) {
      const childPath = `${path}/${name}`;
      if (child.given && (inGiven || node.given)) {
        const missing = await lstat(hostPath(childPath)).then(() => undefined, (error: NodeJS.ErrnoException) => error);
        if (missing !== undefined) {
          this.warn(childPath, missing.code === 'ENOENT' ? 'vanished' : describe(missing));
          continue;
        }
      }
      await this.checkNestedPaths(childPath, child, inGiven || node.given);
    }
  }

  /** One file holding the stream, in a root tree of its own. */
  async stdinTree(stdin: { name: string; stream: AsyncIterable<Uint8Array> }, now: Date): Promise<string> {
    if (!isSafeEntryName(stdin.name)) throw new CofferError('E_USAGE', `--stdin-name ${JSON.stringify(stdin.name)} must be a file name: no "/", not "." or ".."`);
    const iterator = stdin.stream[Symbol.asyncIterator]();
    let pending: Uint8Array | undefined;
    const fill = async (into: Uint8Array, offset: number, length: number): Promise<number> => {
      while (pending === undefined || pending.length === 0) {
        const next = await iterator.next();
        if (next.done === true) return 0;
        pending = next.value;
      }
      const n = Math.min(length, pending.length);
      into.set(pending.subarray(0, n), offset);
      pending = pending.subarray(n);
      return n;
    };
    const { pieces, bytes } = await this.store.storeStream(fill, Number.POSITIVE_INFINITY);
    const ns = (BigInt(now.getTime()) * 1_000_000n).toString();
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const entry: TreeEntry = { name: stdin.name, type: 'file', mode: 0o600, uid, gid, ...this.names(uid, gid), mtime: ns, atime: ns, ctime: ns, inode: 0, links: 1, size: bytes, content: pieces };
    this.entries = 1;
    this.bytesLogical = bytes;
    return (await this.putTree([entry])).id;
  }

  /** A directory above the given paths: only the branches leading to them. */
  private async pathTree(path: string, node: PathNode, parentTree: string | undefined): Promise<string> {
    const previous = await this.parentEntries(parentTree);
    const entries: TreeEntry[] = [];
    for (const [name, child] of node.children) {
      const childPath = `${path}/${name}`;
      if (child.given) {
        const entry = await this.entry(childPath, name, previous.get(name), undefined);
        if (entry !== null) entries.push(entry);
        continue;
      }
      let metadata: FileMetadata;
      try {
        metadata = await readFileMetadata(childPath);
      } catch (error) {
        this.warn(childPath, describe(error));
        continue;
      }
      if (metadata.type !== 'directory') {
        this.warn(childPath, 'not a directory');
        continue;
      }
      const tree = await this.pathTree(childPath, child, previous.get(name)?.tree);
      entries.push(this.metadataEntry(name, metadata, { tree }));
    }
    return (await this.putTree(entries)).id;
  }

  /**
   * The subtree digest of every directory below the given paths, from the listings made ahead
   * (the CLI's, which began while the repository opened), else from a listing of the whole
   * tree made now that keeps nothing but the digests.
   */
  private async subtreeDigests(paths: readonly string[]): Promise<Map<string, string>> {
    const ahead = this.options.listings;
    if (ahead !== undefined && ahead.accounts === this.accounts) return ahead.subtreeDigests();
    const listing = new ListingPrefetch(paths, { excludes: this.options.excludes, accounts: this.accounts, maxBytes: 0 });
    try {
      return await listing.subtreeDigests();
    } finally {
      listing.dispose();
    }
  }

  /** The entries of a parent tree by name (none when there is no parent or it cannot be read). */
  private async parentEntries(tree: string | undefined): Promise<Map<string, TreeEntry>> {
    return (await this.parentTree(tree)).entries;
  }

  /** A parent tree's entries by name, and, when it was read intact, its id and its entries in order (none: no parent, or damaged). */
  private async parentTree(tree: string | undefined): Promise<{ entries: Map<string, TreeEntry>; intact?: { id: string; entries: readonly TreeEntry[] } }> {
    if (tree === undefined) return { entries: new Map() };
    try {
      const list = (await getFileTree(this.repo, tree)).entries;
      return { entries: new Map(list.map((e) => [e.name, e])), intact: { id: tree, entries: list } };
    } catch {
      return { entries: new Map() }; // a damaged parent only costs reading everything again
    }
  }

  /**
   * The tree of a directory being backed up in full, and the summaries of its listing and its
   * subtree to record with it (none when an entry was warned about, could not be stat'ed or has
   * other names; no subtree's either when a subdirectory has none). `recorded`: the summaries
   * the parent snapshot recorded for the directory. A subtree whose digest (listed ahead) is the
   * recorded one is the parent's tree, nothing below it read. Else a listing with the same
   * digest has the same entries with the same metadata, recorded under the same options (the
   * seed), so the parent's entries are this directory's: a directory without subdirectories is
   * the parent's tree, unread; one with subdirectories takes the parent's other entries as they
   * are and walks only its subdirectories again.
   */
  private async directoryTree(path: string, parentTree: string | undefined, recorded: Recorded, rootDev: bigint | undefined): Promise<DirectoryResult> {
    const known = this.subtrees?.get(path);
    if (known !== undefined && parentTree !== undefined && recorded.scan !== undefined && recorded.subtree?.[0] === known) {
      // Every listing below is the one the parent recorded: its trees are this subtree's, unread.
      this.entries += recorded.subtree[1];
      this.bytesLogical += recorded.subtree[2];
      return { tree: parentTree, scan: recorded.scan, subtree: recorded.subtree };
    }
    const prefix = path === '/' ? '' : path;
    const listing = await this.list(path);
    const digest = listing?.digest(this.seedFor(rootDev));
    const scanned = recorded.scan;
    const same = this.options.force !== true && parentTree !== undefined && digest !== undefined && scanned?.[0] === digest;
    if (same && listing !== undefined && !listing.hasSubdirectories) {
      this.entries += scanned[1];
      this.bytesLogical += scanned[2];
      return { tree: parentTree, scan: scanned, subtree: [subtreeDigest(digest, []), scanned[1], scanned[2]] };
    }
    // The parent's entries by name are not held while the entries' reads and subtrees run (a
    // full backup waits on its reads with the whole tree scanned).
    const { entries, waiting, intact } = await this.startEntries(path, prefix, parentTree, rootDev, listing, same);
    for (const entry of await Promise.all(waiting)) if (entry !== null) entries.push(entry);
    entries.sort((a, b) => compareNames(a.name, b.name));
    const scan: ScanSummary | undefined = digest !== undefined && listing !== undefined && !listing.hasLinksOrErrors && !this.warnedDirectories.has(path) ? [digest, entries.length, fileBytes(entries)] : undefined;
    // Every entry the parent's own (the same objects: nothing in them changed): the directory
    // is the parent's tree, neither encoded nor hashed again.
    const summaries = { ...(scan !== undefined ? { scan } : {}), ...subtreeOf(scan, entries) };
    if (intact !== undefined && sameEntries(entries, intact.entries)) return { tree: intact.id, ...summaries };
    const tree = (await this.putTree(entries, intact?.id)).id; // an unchanged directory is its parent tree: no lookup
    return { tree, ...summaries };
  }

  /**
   * A directory's listing compared with its parent tree: the entries answered at once, those
   * to wait for, and the parent tree when intact. `same`: the listing is the one the parent
   * recorded (its digest), so the parent's entries but the subdirectories are taken as they
   * are, and only the subdirectories' records are read out of the listing.
   */
  private async startEntries(path: string, prefix: string, parentTree: string | undefined, rootDev: bigint | undefined, listing: DirectoryScan | undefined, same: boolean): Promise<{ entries: TreeEntry[]; waiting: Promise<TreeEntry | null>[]; intact: { id: string; entries: readonly TreeEntry[] } | undefined }> {
    const { entries: previous, intact } = await this.parentTree(parentTree);
    const excludes = this.options.excludes;
    const taggedCache = excludes !== undefined && (await excludes.isTaggedCache(path));
    const entries: TreeEntry[] = [];
    const waiting: Promise<TreeEntry | null>[] = [];
    const reuse = same && intact !== undefined;
    if (reuse) {
      for (const entry of intact.entries) {
        if (entry.type === 'directory') continue;
        this.entries++;
        if (entry.type === 'file') this.bytesLogical += entry.size;
        entries.push(entry);
      }
    }
    const refuse = (name: string, why: string) => this.warn(`${prefix}/${name}`, why);
    for (const { name, metadata, error } of listing?.entries(isSafeEntryName, refuse, reuse) ?? []) {
      if (taggedCache && name !== 'CACHEDIR.TAG') continue;
      const childPath = `${prefix}/${name}`;
      if (excludes?.matches(childPath, name) === true) continue;
      const entry = this.entry(childPath, name, previous.get(name), rootDev, metadata ?? error);
      if (entry instanceof Promise) waiting.push(entry);
      else if (entry !== null) entries.push(entry);
    }
    return { entries, waiting, intact };
  }

  /** A directory's listing, prefetched or made now (none, and a warning, when it cannot be listed). */
  private async list(path: string): Promise<DirectoryScan | undefined> {
    const prefetched = this.options.listings?.take(path);
    if (prefetched === undefined) await this.scans.acquire();
    try {
      return await (prefetched ?? listDirectory(path));
    } catch (error) {
      this.warn(path, describe(error));
      return undefined;
    } finally {
      if (prefetched === undefined) this.scans.release();
    }
  }

  /** The seed of the listings' digests below a root on device `rootDev` (listingSeed: the scheme's version, the account names, the exclusion rules). */
  private seedFor(rootDev: bigint | undefined): Buffer {
    const key = String(rootDev);
    const known = this.seeds.get(key);
    if (known !== undefined) return known;
    const seed = listingSeed(this.accounts, this.options.excludes, rootDev);
    this.seeds.set(key, seed);
    return seed;
  }

  /**
   * One entry (and everything below it): null when it is excluded, vanished or unreadable.
   * Answered at once, without a promise, for what needs no wait: an unchanged file (the
   * parent's content, unread), a symlink, a device (most entries of an incremental); a
   * promise for a directory and a file to read. `scanned`: its metadata as its directory's
   * scan read it (or the error it met), else it is read here.
   */
  private entry(path: string, name: string, previous: TreeEntry | undefined, rootDev: bigint | undefined, scanned?: FileMetadata | Error): TreeEntry | null | Promise<TreeEntry | null> {
    if (this.options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'backup interrupted');
    let metadata: FileMetadata;
    // Extended attributes (ACLs too) cannot change without the ctime moving: an inode whose
    // ctime is the parent's keeps the parent's attributes, unread (one llistxattr less per entry).
    let keptXattrs: [string, string][] | undefined;
    try {
      if (scanned instanceof Error) throw scanned;
      metadata = scanned ?? readFileMetadataSync(path, { xattrs: false });
      if (this.options.force !== true && previous !== undefined && previous.type === metadata.type && previous.inode === Number(metadata.inode) && previous.ctime === metadata.ctime) {
        keptXattrs = previous.xattrs ?? [];
      } else {
        metadata.xattrs = readXattrs(path);
      }
    } catch (error) {
      this.warn(path, (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'vanished' : describe(error));
      return null;
    }
    const dev = rootDev ?? metadata.dev;
    const otherFilesystem = this.options.excludes?.options.oneFileSystem === true && metadata.dev !== dev;
    if (metadata.type === 'directory') return this.directoryEntry(path, name, metadata, previous, dev, otherFilesystem, keptXattrs);
    if (otherFilesystem) return null;
    if (metadata.type !== 'file') return this.keptOrNewEntry(name, metadata, previous, keptXattrs);
    if (this.options.excludes?.tooLarge(metadata.size) === true) return null;
    if (metadata.links <= 1 && previous !== undefined && this.unchanged(metadata, previous)) {
      this.bytesLogical += previous.size;
      return this.keptOrNewEntry(name, metadata, previous, keptXattrs, { pieces: previous.content as ContentPiece[], size: previous.size });
    }
    return this.fileEntry(path, name, metadata, previous, keptXattrs);
  }

  /** A directory's entry, once its tree is stored (a mount point under --one-file-system is kept, empty). */
  private async directoryEntry(path: string, name: string, metadata: FileMetadata, previous: TreeEntry | undefined, dev: bigint, otherFilesystem: boolean, keptXattrs: [string, string][] | undefined): Promise<TreeEntry> {
    const { tree, scan, subtree }: DirectoryResult = otherFilesystem
      ? { tree: (await this.putTree([])).id }
      : await this.directoryTree(path, previous?.type === 'directory' ? previous.tree : undefined, { scan: previous?.scan, subtree: previous?.subtree }, dev);
    if (previous !== undefined && previous.tree === tree && sameScan(previous.scan, scan) && sameScan(previous.subtree, subtree) && this.recordsSame(previous, metadata, keptXattrs)) {
      this.entries++;
      return previous;
    }
    return this.metadataEntry(name, metadata, { tree, keptXattrs, scan, subtree });
  }

  /**
   * The parent's entry itself when it records exactly what `m` says (an unchanged file, with
   * `content` its parent's, or a symlink, device, FIFO): no new object for most entries of an
   * incremental, and a directory of such entries keeps its parent's tree unencoded. Else a new entry.
   */
  private keptOrNewEntry(name: string, m: FileMetadata, previous: TreeEntry | undefined, keptXattrs: [string, string][] | undefined, content?: FileRead): TreeEntry {
    if (previous !== undefined && this.recordsSame(previous, m, keptXattrs)) {
      this.entries++;
      return previous;
    }
    return this.metadataEntry(name, m, { ...(content !== undefined ? { content } : {}), keptXattrs });
  }

  /**
   * Whether `previous` records `m` as {@link metadataEntry} would (content and subtree are the
   * caller's to check): same type, permissions, owners and their names, mtime and ctime, inode,
   * links, size, target and device numbers, no hard link group, and extended attributes kept
   * (`keptXattrs`: the ctime did not move). Not the access time: an entry only read since
   * keeps the one recorded (reads move it, and nothing else: see DirectoryScan.digest).
   */
  private recordsSame(previous: TreeEntry, m: FileMetadata, keptXattrs: [string, string][] | undefined): boolean {
    return (
      keptXattrs !== undefined && previous.hardlink === undefined && previous.type === m.type && previous.mode === m.mode &&
      previous.uid === m.uid && previous.gid === m.gid && previous.user === this.accounts.users.get(m.uid) && previous.group === this.accounts.groups.get(m.gid) &&
      previous.links === m.links && previous.size === (m.type === 'file' ? m.size : 0) && previous.inode === Number(m.inode) &&
      previous.target === m.target && sameDevice(previous.rdev, m.rdev) &&
      previous.ctime === m.ctime && previous.mtime === m.mtime
    );
  }

  /** A regular file's entry: its content read (or another name's, for a hard link), null when it cannot be read. */
  private async fileEntry(path: string, name: string, metadata: FileMetadata, previous: TreeEntry | undefined, keptXattrs: [string, string][] | undefined): Promise<TreeEntry | null> {
    const linkKey = metadata.links > 1 ? `${metadata.dev}:${metadata.inode}` : undefined;
    let group: number | undefined;
    let read: FileRead | null;
    const link = linkKey === undefined ? undefined : this.hardLinks.get(linkKey);
    if (link !== undefined) {
      group = link.group;
      read = await link.content; // another name of an inode already read
    } else {
      const content = this.fileContent(path, metadata, previous);
      if (linkKey !== undefined) {
        group = this.hardLinks.size + 1;
        this.hardLinks.set(linkKey, { group, content });
      }
      read = await content;
    }
    if (read === null) return null;
    this.bytesLogical += read.size;
    return this.metadataEntry(name, { ...metadata, size: read.size }, { content: read, keptXattrs, ...(group !== undefined ? { hardlink: group } : {}) });
  }

  /** True when a file's size, mtime, ctime and inode are its parent entry's: its recorded content is kept, unread (not with `force`). */
  private unchanged(metadata: FileMetadata, previous: TreeEntry): boolean {
    return (
      this.options.force !== true && previous.type === 'file' && previous.content !== undefined &&
      previous.size === metadata.size && previous.mtime === metadata.mtime && previous.ctime === metadata.ctime &&
      previous.inode === Number(metadata.inode)
    );
  }

  /** A file's content: the parent's when unchanged, else read (null when it cannot be read). */
  private async fileContent(path: string, metadata: FileMetadata, previous: TreeEntry | undefined): Promise<FileRead | null> {
    if (previous !== undefined && this.unchanged(metadata, previous)) return { pieces: previous.content as ContentPiece[], size: previous.size };
    // A file the parent did not have is almost surely new: its chunks are sealed as they are hashed.
    const fresh = previous === undefined;
    const small = isSmallFile(metadata);
    let buffer: Uint8Array | undefined;
    if (small) buffer = await (this.smallBuffers ??= new SharedBufferPool(SMALL_FILE_BYTES, SMALL_FILES_IN_FLIGHT)).acquire();
    else await this.slots.acquire();
    try {
      const read = await readFileContent(path, metadata, this.store, fresh, buffer);
      if (read.warning !== undefined) this.warn(path, read.warning);
      this.options.onProgress?.({ entries: this.entries, bytesRead: this.figures.bytesRead, bytesNew: this.figures.bytesNew });
      return read;
    } catch (error) {
      this.warn(path, (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'vanished' : describe(error));
      return null;
    } finally {
      if (buffer !== undefined) this.smallBuffers?.release(buffer);
      else this.slots.release();
    }
  }

  private names(uid: number, gid: number): { user?: string; group?: string } {
    const user = this.accounts.users.get(uid);
    const group = this.accounts.groups.get(gid);
    return { ...(user !== undefined ? { user } : {}), ...(group !== undefined ? { group } : {}) };
  }

  /** The entry recording `m`; `keptXattrs`: the attributes as the parent recorded them, instead of `m.xattrs`. */
  private metadataEntry(name: string, m: FileMetadata, extra: { tree?: string; content?: FileRead; hardlink?: number; keptXattrs?: [string, string][] | undefined; scan?: ScanSummary | undefined; subtree?: ScanSummary | undefined }): TreeEntry {
    this.entries++;
    const xattrs = extra.keptXattrs ?? m.xattrs.map((x) => [x.name, x.value.toString('base64')] as [string, string]);
    return {
      name,
      type: m.type,
      mode: m.mode,
      uid: m.uid,
      gid: m.gid,
      ...this.names(m.uid, m.gid),
      mtime: m.mtime,
      atime: m.atime,
      ctime: m.ctime,
      inode: Number(m.inode),
      links: m.links,
      size: m.type === 'file' ? m.size : 0,
      ...(extra.content !== undefined ? { content: extra.content.pieces } : {}),
      ...(extra.hardlink !== undefined ? { hardlink: extra.hardlink } : {}),
      ...(m.target !== undefined ? { target: m.target } : {}),
      ...(m.rdev !== undefined ? { rdev: [m.rdev.major, m.rdev.minor] as [number, number] } : {}),
      ...(xattrs.length > 0 ? { xattrs } : {}),
      ...(extra.tree !== undefined ? { tree: extra.tree } : {}),
      ...(extra.scan !== undefined ? { scan: extra.scan } : {}),
      ...(extra.subtree !== undefined ? { subtree: extra.subtree } : {}),
    };
  }

  private async putTree(entries: TreeEntry[], present?: string): Promise<{ id: string }> {
    const { id, bytesStored } = await putFileTree(this.repo, entries, { ...(present !== undefined ? { present } : {}), stage: this.store.stageTree });
    this.figures.bytesStored += bytesStored;
    return { id };
  }
}

/**
 * A directory's listing as a backup recorded it with the directory's entry (`scan`,
 * docs/repository-format.md §16): the digest of the listing (DirectoryScan.digest, seeded
 * with the walk's options), the entries of its tree and their files' bytes.
 */
type ScanSummary = [digest: string, entries: number, bytes: number];

/** What the parent snapshot recorded with a directory's entry: its listing's summary, and its subtree's. */
interface Recorded {
  scan: ScanSummary | undefined;
  subtree: ScanSummary | undefined;
}

/** A directory's tree, and the summaries to record with its entry. */
interface DirectoryResult {
  tree: string;
  scan?: ScanSummary | undefined;
  subtree?: ScanSummary | undefined;
}

/**
 * The summary of a directory's whole subtree (`subtree`, source/files/subtree-digest.ts):
 * recorded when its own listing's is (`scan`) and every subdirectory among `entries` has one.
 */
function subtreeOf(scan: ScanSummary | undefined, entries: readonly TreeEntry[]): { subtree?: ScanSummary } {
  if (scan === undefined) return {};
  const subdirectories: [string, string][] = [];
  let count = scan[1];
  let bytes = scan[2];
  for (const entry of entries) {
    if (entry.type !== 'directory') continue;
    if (entry.subtree === undefined) return {};
    subdirectories.push([entry.name, entry.subtree[0]]);
    count += entry.subtree[1];
    bytes += entry.subtree[2];
  }
  return { subtree: [subtreeDigest(scan[0], subdirectories), count, bytes] };
}

function sameScan(a: ScanSummary | undefined, b: ScanSummary | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a[0] === b[0] && a[1] === b[1] && a[2] === b[2]);
}

/** The bytes of the files among `entries`. */
function fileBytes(entries: readonly TreeEntry[]): number {
  let bytes = 0;
  for (const entry of entries) if (entry.type === 'file') bytes += entry.size;
  return bytes;
}

/** Whether two lists hold the same entry objects in the same order. */
function sameEntries(a: readonly TreeEntry[], b: readonly TreeEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameDevice(recorded: [number, number] | undefined, rdev: FileMetadata['rdev']): boolean {
  return recorded === undefined ? rdev === undefined : rdev !== undefined && recorded[0] === rdev.major && recorded[1] === rdev.minor;
}

function describe(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  return e.code !== undefined ? `${e.code}: ${e.message.replace(/^[A-Z]+: /, '')}` : String(e.message ?? error);
}
