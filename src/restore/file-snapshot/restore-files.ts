import { constants } from 'node:fs';
import { chmodSync, closeSync, ftruncateSync, lchownSync, mkdirSync, openSync } from 'node:fs';
import { link, open, readdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SharedBufferPool } from '../../concurrency/index.js';
import { AlignedBuffers, DirectAppender, isNoSpace, takesDirectWrites, targetError } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import { syscalls, writeFullySync, makeFolders, makeFoldersSync } from '../../native/index.js';
import { entryXattrs, getFileTree, type Repository, type Snapshot, type TreeEntry } from '../../repo/index.js';
import { hostPath, printableName } from '../../names/index.js';
import { HostOwners } from '../host-owners.js';
import { setXattrsOnHost } from '../set-xattrs.js';
import { ChunkReader } from './chunk-reader.js';
import { PathFilter } from './path-filter.js';

/** How to restore a file snapshot. */
export interface FileRestoreOptions {
  /** The directory to restore into: created if absent, must be empty otherwise. */
  to: string;
  /** Glob patterns: only what they match (and what lies below it) is restored. */
  include?: string[];
  exclude?: string[];
  /** Read each file back after writing it and check every chunk's id. */
  verify?: boolean;
  /** Owners by their recorded ids, names ignored (tar's `--numeric-owner`); default: by name (host-owners.ts). */
  numericOwner?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: { entries: number; bytes: number }) => void;
}

/** What a file restore did. */
export interface FileRestoreReport {
  files: number;
  directories: number;
  symlinks: number;
  hardLinks: number;
  /** FIFOs and device nodes. */
  special: number;
  bytes: number;
  /** Files read back and found identical (with verify). */
  verified: number;
  /** What could not be restored as recorded (the rest was). */
  problems: { path: string; message: string }[];
  /**
   * Content read from the repository: objects (format 1: chunks; format 2: frames, each
   * holding many chunks) and their stored bytes (on S3, what the restore downloads; trees not
   * counted).
   */
  fetched: { objects: number; bytes: number };
}

/**
 * Restores a file snapshot into a directory: content (holes left as holes), mode, owner (by
 * name when the name exists here, else by id, as `files get --to` sets it: host-owners.ts;
 * only as root), times in nanoseconds (symlinks too), symlinks, hard links, FIFOs, device
 * nodes (as root), extended attributes and so POSIX ACLs. Never writes outside `to`: every name was checked when its tree was decoded (no `/`,
 * `..` or NUL, unique in its directory), the target starts empty, and files are created
 * exclusively, never through a symlink. What cannot be applied (an owner as non-root, a
 * `trusted.` attribute) is reported and the restore goes on.
 *
 * Files are written concurrently: up to {@link FILES_IN_FLIGHT} at once, each reading up to
 * {@link CHUNKS_AHEAD} chunks ahead of what it writes (into reused shared buffers), so the worker threads open chunks
 * while the main thread writes (one file at a time, chunk after chunk, left the workers idle
 * and the restore slower than restic's). A directory's own metadata (its times last) is
 * applied once everything in it is written (so a read-only one is still written into, and
 * its default ACL is not inherited by entries that had none). A hard link waits for the
 * first name of its inode to be written.
 */
export async function restoreFileSnapshot(repo: Repository, snapshot: Snapshot, options: FileRestoreOptions): Promise<FileRestoreReport> {
  if (snapshot.files === undefined) throw new CofferError('E_USAGE', `snapshot ${snapshot.id.slice(0, 8)} holds disks, not files`);
  let present: string[];
  try {
    await makeFolders(options.to, 0o777, hostPath);
    present = await readdir(hostPath(options.to));
  } catch (error) {
    throw targetError(options.to, error, { exists: 'it exists and is not a directory' }); // exit 4 (5 for a full disk), never an internal error
  }
  if (present.length > 0) throw new CofferError('E_USAGE', `${options.to} is not empty: restore files into an empty or new directory`);
  const restorer = new FileRestorer(repo, options, await HostOwners.for({ numeric: options.numericOwner }), await takesDirectWrites(hostPath(options.to)).catch(() => false));
  await restorer.restore(snapshot.files.tree, options.to);
  return restorer.report;
}

/** A directory of the restore (`parents`: with those above it), its failure a target error. */
function makeDirectory(path: string, parents: boolean): void {
  try {
    if (parents) makeFoldersSync(path, 0o777, hostPath);
    else mkdirSync(hostPath(path), { mode: 0o700 });
  } catch (error) {
    throw targetError(path, error);
  }
}

/** Files written at once. */
const FILES_IN_FLIGHT = 12;
/** Chunks of one file fetched and opened ahead of the one being written. */
const CHUNKS_AHEAD = 2;
/**
 * Format 2: decoded frames kept. Each file in flight holds up to CHUNKS_AHEAD + 1 chunks
 * pinned in their frames (the one written, those fetched ahead): at most 36 frames, as many
 * slots (2.3 MiB each, allocated as needed), so a pinned frame never pushes one about to be
 * read out of the cache. A restore of small files pins a few frames; of large files read
 * together at backup, up to all of them.
 */
const PINNED_FRAMES = FILES_IN_FLIGHT * (CHUNKS_AHEAD + 1);
/**
 * Format 1: chunks up to this size (file backup's largest, 2 MiB) are opened into one of
 * FILES_IN_FLIGHT × CHUNKS_AHEAD buffers in shared memory (48 MiB, reused: a buffer per
 * chunk was freed only when a worker's garbage collector got to it, and the restore's RSS
 * doubled); larger pieces (other chunk sizes) get memory of their own.
 */
const BUFFER_BYTES = 2 << 20;

/**
 * Files at least this large are written past the page cache where the target's filesystem
 * allows it (disk/direct-writes.ts: on these machines the page cache's fresh pages cost more
 * than the writes themselves), gathered into 1 MiB aligned buffers (disk/direct-appender.ts).
 * Smaller files keep the page cache: a direct write waits for the device.
 */
const DIRECT_FILE_BYTES = 4 << 20;
const DIRECT_BUFFER_BYTES = 1 << 20;

/**
 * Entries walked before the planned ones are restored (flush): the whole bench tree (51,289
 * non-directories) in one plan, so frames shared across its directories are decoded once.
 * The plan keeps its entries' decoded trees alive (≈1.6 KiB an entry: the heap held 99 MB
 * at the end of the bench tree's walk), so about 100 MB at most; the peak RSS of that
 * restore went 299-306 → 269-308 MiB (the 12 writers' slots and promises are gone).
 */
const PLANNED_ENTRIES = 65_536;

/** An entry walked, and the directory it goes in (shared by its entries: no paths per entry). */
interface PlannedEntry {
  entry: TreeEntry;
  in: { path: string; target: string };
}

/** The snapshot path of a planned entry, and where it is restored. */
function placeOf({ entry, in: directory }: PlannedEntry): { path: string; destination: string } {
  return { path: `${directory.path}/${entry.name}`, destination: join(directory.target, entry.name) };
}

/** Undefined first (nothing to read), then by place. */
function compareKeys(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return a < b ? -1 : 1;
}

/** A chunk opened for writing, and how to give its memory back. */
interface OpenedChunk {
  data: Uint8Array;
  release: () => void;
}

class FileRestorer {
  readonly report: FileRestoreReport = { files: 0, directories: 0, symlinks: 0, hardLinks: 0, special: 0, bytes: 0, verified: 0, problems: [], fetched: { objects: 0, bytes: 0 } };
  private readonly filter: PathFilter;
  private readonly chunks: ChunkReader;
  /** Hard-link group → the path of its first name, once written (undefined if that failed). */
  private readonly links = new Map<number, Promise<string | undefined>>();
  /** Entries other than directories, walked and waiting to be restored. */
  private planned: PlannedEntry[] = [];
  /** Directories walked (children before parents) whose metadata waits for the planned entries. */
  private written: PlannedEntry[] = [];
  private buffers: SharedBufferPool | undefined;
  /** The aligned buffers of the large files written direct (two per such file in flight: one fills while the other is written); undefined when the target takes no direct writes. */
  private readonly directBuffers: AlignedBuffers | undefined;
  private readonly root = process.getuid?.() === 0;

  constructor(
    private readonly repo: Repository,
    private readonly options: FileRestoreOptions,
    private readonly owners: HostOwners,
    direct: boolean,
  ) {
    this.directBuffers = direct ? new AlignedBuffers(DIRECT_BUFFER_BYTES) : undefined;
    this.filter = new PathFilter(options.include ?? [], options.exclude ?? []);
    this.chunks = new ChunkReader(repo, undefined, { keptFrames: PINNED_FRAMES });
  }

  private problem(path: string, message: string): void {
    this.report.problems.push({ path, message });
  }

  /** Restores the tree `tree` into `to` (an existing, empty directory). */
  async restore(tree: string, to: string): Promise<void> {
    await this.directory(tree, '', to, true, false);
    await this.flush();
    const { chunks, bytes } = this.chunks.fetched;
    this.report.fetched = { objects: chunks, bytes };
  }

  /**
   * Walks the entries of a tree into `target` (which exists when `exists`); answers whether
   * anything was restored in it. `path` is the snapshot path of the directory; `inside` when
   * the directory itself was selected (an include matched it or above it). Directories are
   * created as they are met; everything else waits in the plan ({@link flush}), and the
   * directory's own metadata waits until what is in it is written.
   */
  private async directory(tree: string, path: string, target: string, exists: boolean, inside: boolean): Promise<boolean> {
    const entries = (await getFileTree(this.repo, tree)).entries;
    const here = { path, target };
    let restored = false;
    for (const entry of entries) {
      if (this.options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'restore interrupted');
      const childPath = `${path}/${entry.name}`;
      const decision = this.filter.decide(childPath, entry.name, inside);
      if (decision === 'skip') continue;
      const selected = decision === 'restore';
      if (entry.type === 'directory') {
        const destination = join(target, entry.name);
        if (selected) {
          if (!exists) makeDirectory(target, true);
          exists = true;
          makeDirectory(destination, false);
          await this.directory(entry.tree as string, childPath, destination, true, true);
        } else if (!(await this.directory(entry.tree as string, childPath, destination, false, false))) {
          continue; // not selected itself: created only when something below it is
        }
        this.written.push({ entry, in: here });
        this.report.directories++;
        restored = true;
        continue;
      }
      if (!selected) continue;
      if (!exists) makeDirectory(target, true);
      exists = true;
      restored = true;
      this.planned.push({ entry, in: here });
      if (this.planned.length >= PLANNED_ENTRIES) await this.flush();
    }
    return restored;
  }

  /**
   * Restores the planned entries, those whose content needs no chunk first, then the files
   * in the order their first chunk is stored (pack, frame, offset): files are walked in name
   * order but were packed in the order a backup read them, many directories at once, and
   * restored by name 12 at a time they decoded each frame of small files ~10 times (the
   * bench's tree: 5.1 GB of frames opened for 1.2 GB stored). Then the metadata of the
   * directories whose walk is done, children before parents (times last: writing into a
   * directory moves its times).
   */
  private async flush(): Promise<void> {
    const batch = this.planned;
    const directories = this.written;
    this.planned = [];
    this.written = [];
    const keys: (string | undefined)[] = [];
    for (const { entry } of batch) keys.push(await this.placeKeyOf(entry));
    const order = batch.map((_, i) => i).sort((a, b) => compareKeys(keys[a], keys[b])); // stable: walk order among equals
    keys.length = 0;
    // FILES_IN_FLIGHT runners take the entries in order: a slot and a promise per entry, made
    // at once, held ~5 KiB each until the last was written (the RSS doubled).
    let next = 0;
    const runner = async (): Promise<void> => {
      while (next < order.length) {
        const planned = batch[order[next++] as number] as PlannedEntry;
        const { path, destination } = placeOf(planned);
        await this.restoreLeaf(planned.entry, path, destination);
      }
    };
    // Nothing planned may outlive the flush: the directories' times are set after, and a failure here is the caller's.
    const settled = await Promise.allSettled(Array.from({ length: FILES_IN_FLIGHT }, runner));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    for (const planned of directories) {
      const { path, destination } = placeOf(planned);
      await this.applyMetadata(destination, path, planned.entry);
    }
  }

  /** Where the first chunk of a file's content is stored (undefined: no chunk, or no order to follow). */
  private async placeKeyOf(entry: TreeEntry): Promise<string | undefined> {
    if (entry.type !== 'file') return undefined;
    const first = entry.content?.find(([what]) => what !== 'zero' && what !== 'hole');
    return first === undefined ? undefined : this.chunks.placeKey(first[0]);
  }

  /** Restores a non-directory entry: problems are recorded, only an interrupt rejects. */
  private async restoreLeaf(entry: TreeEntry, path: string, destination: string): Promise<void> {
    let firstName: ((path: string | undefined) => void) | undefined;
    let first: Promise<string | undefined> | undefined;
    if (entry.type === 'file' && entry.hardlink !== undefined) {
      first = this.links.get(entry.hardlink);
      if (first === undefined) this.links.set(entry.hardlink, new Promise((resolve) => (firstName = resolve)));
    }
    try {
      if (this.options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'restore interrupted');
      const linkTo = first === undefined ? undefined : await first;
      if (linkTo !== undefined) {
        await link(hostPath(linkTo), hostPath(destination));
        this.report.hardLinks++;
      } else {
        await this.leaf(entry, path, destination);
        if (first !== undefined && entry.hardlink !== undefined) this.links.set(entry.hardlink, Promise.resolve(destination)); // the first name failed: this one is
      }
      firstName?.(destination);
    } catch (error) {
      firstName?.(undefined);
      if (error instanceof CofferError && error.code === 'E_INTERRUPTED') throw error;
      // A full target ends the restore: every file after would fail the same way, empty.
      if (isNoSpace(error)) {
        if (entry.type === 'file') await rm(hostPath(destination), { force: true }).catch(() => undefined); // what was written of it
        throw new CofferError('E_NO_SPACE', `no space left on the target writing ${destination}: the restore stopped there (that file removed, ${this.report.files} files restored before it)`, { subject: { path: destination }, cause: error });
      }
      this.problem(path, (error as Error).message);
    }
    this.options.onProgress?.({ entries: this.report.files + this.report.directories, bytes: this.report.bytes });
  }

  private async leaf(entry: TreeEntry, path: string, destination: string): Promise<void> {
    switch (entry.type) {
      case 'file':
        await this.writeFile(entry, destination);
        this.report.files++;
        break;
      case 'symlink':
        await symlink(hostPath(entry.target as string), hostPath(destination));
        this.report.symlinks++;
        break;
      case 'fifo':
        syscalls.mknod(hostPath(destination), constants.S_IFIFO | entry.mode, 0, 0);
        this.report.special++;
        break;
      case 'char-device':
      case 'block-device': {
        if (!this.root) throw new CofferError('E_USAGE', 'device nodes are restored only as root: skipped');
        const [major, minor] = entry.rdev as [number, number];
        syscalls.mknod(hostPath(destination), (entry.type === 'char-device' ? constants.S_IFCHR : constants.S_IFBLK) | entry.mode, major, minor);
        this.report.special++;
        break;
      }
      default:
        throw new CofferError('E_USAGE', 'a socket is not restored (a program creates it when it runs)');
    }
    await this.applyMetadata(destination, path, entry);
  }

  /**
   * Writes a file's pieces: chunks written, holes skipped (the final size set by truncate).
   * The file calls are synchronous (open, write, truncate, close on the main thread): a
   * round trip through libuv's thread pool per call cost more than the call on a cached
   * filesystem (`strace -c -f` of a restore of 12,500 files: 500,000 futex calls); the
   * chunks still arrive asynchronously, fetched ahead.
   */
  private async writeFile(entry: TreeEntry, destination: string): Promise<void> {
    const fd = openSync(hostPath(destination), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    const direct = this.directBuffers !== undefined && entry.size >= DIRECT_FILE_BYTES ? DirectAppender.open(hostPath(destination), fd, this.directBuffers) : undefined;
    // Through the page cache at once; past it, gathered and written on the pool (awaited: the chunk's memory is then free).
    const write = direct === undefined ? (data: Uint8Array, at: number): undefined => void writeFullySync(fd, data, at) : (data: Uint8Array, at: number) => direct.write(data, at);
    try {
      const pieces = entry.content ?? [];
      // Chunks fetched ahead of the write: at most CHUNKS_AHEAD pending at once.
      const ahead: (Promise<OpenedChunk> | null)[] = [];
      const fetch = (i: number) => {
        const [what, length] = pieces[i] ?? ['hole', 0];
        const work = what === 'zero' || what === 'hole' ? null : this.openChunk(what, length);
        work?.catch(() => undefined); // awaited in order below
        ahead.push(work);
      };
      for (let i = 0; i < Math.min(CHUNKS_AHEAD, pieces.length); i++) fetch(i);
      let offset = 0;
      try {
        for (let i = 0; i < pieces.length; i++) {
          const [what, length] = pieces[i] as [string, number];
          const pending = ahead[i];
          if (i + CHUNKS_AHEAD < pieces.length) fetch(i + CHUNKS_AHEAD);
          if (what === 'zero') await write(Buffer.alloc(length), offset);
          else if (pending !== null && pending !== undefined) {
            ahead[i] = null;
            const chunk = await pending;
            try {
              if (chunk.data.length !== length) throw new CofferError('E_CORRUPT_OBJECT', `chunk ${what} holds ${chunk.data.length} bytes, the file expects ${length}`);
              await write(chunk.data, offset);
            } finally {
              chunk.release();
            }
          }
          offset += length;
        }
      } finally {
        // A failed write leaves chunks fetched ahead: their buffers go back once they arrive.
        await Promise.all(ahead.map((work) => work?.then((chunk) => chunk.release(), () => undefined)));
      }
      await direct?.finish();
      if (offset !== entry.size || pieces.at(-1)?.[0] === 'hole') ftruncateSync(fd, entry.size);
      this.report.bytes += entry.size;
      if (this.options.verify === true) {
        const handle = await open(hostPath(destination), constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          await this.verify(handle, entry);
        } finally {
          await handle.close();
        }
      }
    } finally {
      await direct?.close();
      closeSync(fd);
    }
  }

  /**
   * A chunk to write: format 2, a view into its decoded frame (no copy; the frame's slot held
   * until released); format 1, opened into a shared buffer (or its own memory when larger than one).
   */
  private async openChunk(hex: string, length: number): Promise<OpenedChunk> {
    if (this.chunks.pins) return this.chunks.pin(hex);
    if (length > BUFFER_BYTES) return { data: await this.chunks.read(hex), release: () => undefined };
    const buffers = (this.buffers ??= new SharedBufferPool(BUFFER_BYTES, FILES_IN_FLIGHT * CHUNKS_AHEAD));
    const buffer = await buffers.acquire();
    try {
      const n = await this.chunks.readInto(hex, buffer);
      return { data: buffer.subarray(0, n), release: () => buffers.release(buffer) };
    } catch (error) {
      buffers.release(buffer);
      throw error;
    }
  }

  /** Reads back what was written and checks it piece by piece. */
  private async verify(handle: import('node:fs/promises').FileHandle, entry: TreeEntry): Promise<void> {
    let offset = 0;
    for (const [what, length] of entry.content ?? []) {
      const bytes = Buffer.alloc(length);
      const { bytesRead } = await handle.read(bytes, 0, length, offset);
      const ok = bytesRead === length && (what === 'hole' || what === 'zero' ? bytes.every((b) => b === 0) : this.repo.codec.idOf(bytes).toString('hex') === what);
      if (!ok) throw new CofferError('E_VERIFY_FAILED', `bytes ${offset}-${offset + length} read back differ from the snapshot`);
      offset += length;
    }
    this.report.verified++;
  }

  /**
   * Owner, extended attributes, mode, then times (last: the others change ctime only), as
   * `files get --to` sets them (files/extract-tree.ts): chown clears `security.capability`,
   * so the attributes come after it; a `user.*` attribute needs write permission, which the
   * mode of a read-only file or folder takes from a user other than root, so they come
   * before chmod (after it, such a restore lost them); an ACL's mask and the mode's group
   * bits are one value, equal in the snapshot, so the chmod leaves the ACL as it was.
   * Synchronous calls, as in writeFile.
   */
  private async applyMetadata(destination: string, path: string, entry: TreeEntry): Promise<void> {
    const host = hostPath(destination);
    if (this.root) {
      const { uid, gid } = this.owners.idsOf(entry);
      try {
        lchownSync(host, uid, gid);
      } catch (error) {
        this.problem(path, `owner: ${(error as Error).message}`);
      }
    }
    setXattrsOnHost(host, entryXattrs(entry), { onRefused: (name, error) => this.problem(path, `extended attribute ${printableName(name)}: ${error.message}`) });
    if (entry.type !== 'symlink') {
      try {
        chmodSync(host, entry.mode);
      } catch (error) {
        this.problem(path, `mode: ${(error as Error).message}`);
      }
    }
    try {
      syscalls.setTimes(host, BigInt(entry.atime), BigInt(entry.mtime));
    } catch (error) {
      this.problem(path, `times: ${(error as Error).message}`);
    }
  }
}
