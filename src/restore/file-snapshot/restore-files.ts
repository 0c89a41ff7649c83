import { constants } from 'node:fs';
import { chmod, link, lchown, mkdir, open, readdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CofferError } from '../../errors/index.js';
import { syscalls } from '../../native/index.js';
import { getFileTree, type Repository, type Snapshot, type TreeEntry } from '../../repo/index.js';
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
}

/**
 * Restores a file snapshot into a directory: content (holes left as holes), mode, owner (by
 * name when the name exists here, else by id; only as root), times in nanoseconds (symlinks
 * too), symlinks, hard links, FIFOs, device nodes (as root), extended attributes and so POSIX
 * ACLs. Never writes outside `to`: every name was checked when its tree was decoded (no `/`,
 * `..` or NUL, unique in its directory), the target starts empty, and files are created
 * exclusively, never through a symlink. What cannot be applied (an owner as non-root, a
 * `trusted.` attribute) is reported and the restore goes on.
 */
export async function restoreFileSnapshot(repo: Repository, snapshot: Snapshot, options: FileRestoreOptions): Promise<FileRestoreReport> {
  if (snapshot.files === undefined) throw new CofferError('E_USAGE', `snapshot ${snapshot.id.slice(0, 8)} holds disks, not files`);
  await mkdir(options.to, { recursive: true });
  if ((await readdir(options.to)).length > 0) throw new CofferError('E_USAGE', `${options.to} is not empty: restore files into an empty or new directory`);
  const restorer = new FileRestorer(repo, options, await readAccountIds());
  await restorer.directory(snapshot.files.tree, '', options.to, true, false);
  return restorer.report;
}

/** Names to ids from /etc/passwd and /etc/group. */
async function readAccountIds(): Promise<{ users: Map<string, number>; groups: Map<string, number> }> {
  const parse = async (file: string) => {
    const map = new Map<string, number>();
    for (const line of (await readFile(file, 'utf8').catch(() => '')).split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id !== undefined && /^\d+$/.test(id) && !map.has(name)) map.set(name, Number(id));
    }
    return map;
  };
  return { users: await parse('/etc/passwd'), groups: await parse('/etc/group') };
}

class FileRestorer {
  readonly report: FileRestoreReport = { files: 0, directories: 0, symlinks: 0, hardLinks: 0, special: 0, bytes: 0, verified: 0, problems: [] };
  private readonly filter: PathFilter;
  private readonly chunks: ChunkReader;
  private readonly links = new Map<number, string>();
  private readonly root = process.getuid?.() === 0;

  constructor(
    private readonly repo: Repository,
    private readonly options: FileRestoreOptions,
    private readonly accounts: { users: Map<string, number>; groups: Map<string, number> },
  ) {
    this.filter = new PathFilter(options.include ?? [], options.exclude ?? []);
    this.chunks = new ChunkReader(repo);
  }

  private problem(path: string, message: string): void {
    this.report.problems.push({ path, message });
  }

  /**
   * Restores the entries of a tree into `target` (which exists when `exists`); answers
   * whether anything was restored in it. `path` is the snapshot path of the directory;
   * `inside` when the directory itself was selected (an include matched it or above it).
   */
  async directory(tree: string, path: string, target: string, exists: boolean, inside: boolean): Promise<boolean> {
    const entries = (await getFileTree(this.repo, tree)).entries;
    let restored = false;
    for (const entry of entries) {
      if (this.options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'restore interrupted');
      const childPath = `${path}/${entry.name}`;
      const decision = this.filter.decide(childPath, entry.name, inside);
      if (decision === 'skip') continue;
      const selected = decision === 'restore';
      const destination = join(target, entry.name);
      if (entry.type === 'directory') {
        if (selected) {
          if (!exists) await mkdir(target, { recursive: true });
          exists = true;
          await mkdir(destination, { mode: 0o700 });
          await this.directory(entry.tree as string, childPath, destination, true, true);
          await this.applyMetadata(destination, childPath, entry);
          this.report.directories++;
          restored = true;
        } else {
          // Not selected itself: created only when something below it is.
          if (await this.directory(entry.tree as string, childPath, destination, false, false)) {
            await this.applyMetadata(destination, childPath, entry);
            this.report.directories++;
            restored = true;
          }
        }
        continue;
      }
      if (!selected) continue;
      if (!exists) await mkdir(target, { recursive: true });
      exists = true;
      try {
        await this.leaf(entry, childPath, destination);
        restored = true;
      } catch (error) {
        if (error instanceof CofferError && error.code === 'E_INTERRUPTED') throw error;
        this.problem(childPath, (error as Error).message);
      }
      this.options.onProgress?.({ entries: this.report.files + this.report.directories, bytes: this.report.bytes });
    }
    return restored;
  }

  private async leaf(entry: TreeEntry, path: string, destination: string): Promise<void> {
    switch (entry.type) {
      case 'file': {
        const first = entry.hardlink === undefined ? undefined : this.links.get(entry.hardlink);
        if (first !== undefined) {
          await link(first, destination);
          this.report.hardLinks++;
          return;
        }
        await this.writeFile(entry, destination);
        if (entry.hardlink !== undefined) this.links.set(entry.hardlink, destination);
        this.report.files++;
        break;
      }
      case 'symlink':
        await symlink(entry.target as string, destination);
        this.report.symlinks++;
        break;
      case 'fifo':
        syscalls.mknod(destination, constants.S_IFIFO | entry.mode, 0, 0);
        this.report.special++;
        break;
      case 'char-device':
      case 'block-device': {
        if (!this.root) throw new CofferError('E_USAGE', 'device nodes are restored only as root: skipped');
        const [major, minor] = entry.rdev as [number, number];
        syscalls.mknod(destination, (entry.type === 'char-device' ? constants.S_IFCHR : constants.S_IFBLK) | entry.mode, major, minor);
        this.report.special++;
        break;
      }
      default:
        throw new CofferError('E_USAGE', 'a socket is not restored (a program creates it when it runs)');
    }
    await this.applyMetadata(destination, path, entry);
  }

  /** Writes a file's pieces: chunks written, holes skipped (the final size set by truncate). */
  private async writeFile(entry: TreeEntry, destination: string): Promise<void> {
    const handle = await open(destination, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      let offset = 0;
      for (const [what, length] of entry.content ?? []) {
        if (what === 'zero') await handle.write(Buffer.alloc(length), 0, length, offset);
        else if (what !== 'hole') {
          const data = await this.chunks.read(what);
          if (data.length !== length) throw new CofferError('E_CORRUPT_OBJECT', `chunk ${what} holds ${data.length} bytes, the file expects ${length}`);
          await handle.write(data, 0, length, offset);
        }
        offset += length;
      }
      await handle.truncate(entry.size);
      this.report.bytes += entry.size;
      if (this.options.verify === true) await this.verify(handle, entry);
    } finally {
      await handle.close();
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

  /** Owner, mode, extended attributes, then times (last: the others change ctime only). */
  private async applyMetadata(destination: string, path: string, entry: TreeEntry): Promise<void> {
    if (this.root) {
      const uid = (entry.user !== undefined ? this.accounts.users.get(entry.user) : undefined) ?? entry.uid;
      const gid = (entry.group !== undefined ? this.accounts.groups.get(entry.group) : undefined) ?? entry.gid;
      await lchown(destination, uid, gid).catch((error: Error) => this.problem(path, `owner: ${error.message}`));
    }
    if (entry.type !== 'symlink') await chmod(destination, entry.mode).catch((error: Error) => this.problem(path, `mode: ${error.message}`));
    for (const [name, value] of entry.xattrs ?? []) {
      try {
        syscalls.setXattr(destination, name, Buffer.from(value, 'base64'));
      } catch (error) {
        this.problem(path, `extended attribute ${name}: ${(error as Error).message}`);
      }
    }
    try {
      syscalls.setTimes(destination, BigInt(entry.atime), BigInt(entry.mtime));
    } catch (error) {
      this.problem(path, `times: ${(error as Error).message}`);
    }
  }
}
