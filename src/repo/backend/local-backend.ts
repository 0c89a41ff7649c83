import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { CofferError } from '../../errors/index.js';
import { DIRECT_ALIGNMENT, isAlignedInMemory, syscalls, takesDirectWrites, writeFully, makeFolders } from '../../native/index.js';
import type { Backend, BackendEntry } from './backend.js';
import { checkedKey } from './backend-key.js';
import { ReadHandles, type ReadLease } from './local-read-handles.js';
import { shortObject } from './read-range.js';

const TEMP_PREFIX = '.tmp-';

/**
 * Objects from this size (packs: 8 MiB) are written past the page cache when they can be
 * ({@link LocalBackend.putDirect}); index segments, manifests and the like are small and read
 * again soon, and keep it.
 */
const DIRECT_PUT_BYTES = 1024 * 1024;

/**
 * A repository in a local directory (or a mounted NAS share).
 *
 * Atomic put is a write to a temporary file in the same directory, then `rename` over the
 * final name: rename is used only here, inside the backend, to give the atomicity that S3
 * gives natively. Durability comes from `sync()`, one `syncfs(2)` for every object written
 * so far, instead of an fsync per object: a backup writes thousands of small chunks, and an
 * fsync each cost a quarter of the backup's time in the benchmark
 * (docs/decisions/2026-11-25-durability.md).
 *
 * After a power loss, a file renamed but never synced can be left empty (ext4 and XFS
 * allocate its blocks lazily and commit them in order, so it is either whole or empty, never
 * garbage). Empty files are therefore crash debris, not objects: `has`, `get` and `list`
 * treat them as absent, so the next backup writes them again. No object Coffer writes is
 * empty. Temporary files left by a killed process start with `.tmp-`; they are never listed
 * and may be deleted by anyone.
 */
export class LocalBackend implements Backend {
  readonly location: string;
  /** A folder's filesystem fills up: the repository keeps a space reserve in it (space-reserve.ts). */
  readonly fillsUp = true;
  private readonly madeDirectories = new Set<string>();
  /** Temporary files of unfinished writes that listings came across (`removeStaleTemporaries`). */
  private readonly temporariesSeen = new Set<string>();
  /** Packs stay open between ranged reads of their frames. */
  private readonly readHandles: ReadHandles;
  /** Whether the root's filesystem takes direct writes: asked at the first large put; false once one was refused. */
  private directPuts: Promise<boolean> | undefined;

  constructor(
    readonly root: string,
    options: { readHandles?: ReadHandles } = {},
  ) {
    this.location = root;
    this.readHandles = options.readHandles ?? new ReadHandles();
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    const temp = await this.writeTemp(key, path, data);
    try {
      await rename(temp, path);
      this.readHandles.forget(path);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw this.translate(error, key, 'write');
    }
  }

  /**
   * The temporary file written whole, then linked to the final name: link(2) fails on a name
   * that exists, atomically, also between hosts on NFS (the classic lock-file idiom), so of
   * concurrent creates exactly one links. Unlike elsewhere, an empty file under the name (crash
   * debris) counts as present here: removing it first would race with another create.
   */
  async create(key: string, data: Uint8Array): Promise<boolean> {
    const path = this.pathOf(key);
    const temp = await this.writeTemp(key, path, data);
    try {
      await link(temp, path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw this.translate(error, key, 'write');
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    const present = await readFile(path).catch(() => undefined);
    return present !== undefined && Buffer.from(data.buffer, data.byteOffset, data.length).equals(present);
  }

  /** Writes `data` to a new temporary file beside `path` (the key's final name); returns its path. */
  private async writeTemp(key: string, path: string, data: Uint8Array): Promise<string> {
    const directory = dirname(path);
    await this.ensureDirectory(directory);
    const temp = join(directory, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      const handle = await open(temp, 'wx', 0o600);
      try {
        if (!(await this.putDirect(temp, data))) await writeFully(handle, [data], 0);
      } finally {
        await handle.close();
      }
      return temp;
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw this.translate(error, key, 'write');
    }
  }

  /**
   * Writes a large object (a pack) into the new file `temp` past the page cache (O_DIRECT),
   * when its memory allows it: it starts on a {@link DIRECT_ALIGNMENT} boundary and its
   * buffer holds whole sectors past its end (a pack writer's buffers do, pack-writer.ts). The
   * last sector goes whole, bytes past the end included, and the file is then cut to the
   * object's length. Returns false, having written nothing, when the object is small, its
   * memory is not so placed, the root is not on ext4, XFS or btrfs, or the filesystem refuses
   * (EINVAL, remembered): the caller writes it through the page cache.
   *
   * Why: a backup writes gigabytes of packs that nothing reads soon. Through the page cache
   * the kernel copies each page into fresh cache memory and writes it back later — a tenth of a
   * full backup's CPU on the benchmark's disk — and evicts what the hypervisor's running VMs
   * keep there (the restore's raw targets write past it for the same reason, disk/direct-writes.ts).
   * After a power loss before `sync()`, the file is whole or absent as before: its blocks are
   * allocated and written before its length is set and before the rename.
   */
  private async putDirect(temp: string, data: Uint8Array): Promise<boolean> {
    if (data.length < DIRECT_PUT_BYTES) return false;
    const padded = Math.ceil(data.length / DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT;
    if (data.byteOffset + padded > data.buffer.byteLength || !isAlignedInMemory(data)) return false;
    this.directPuts ??= takesDirectWrites(this.root).catch(() => false);
    if (!(await this.directPuts)) return false;
    let handle: FileHandle;
    try {
      handle = await open(temp, constants.O_WRONLY | constants.O_DIRECT);
    } catch {
      this.directPuts = Promise.resolve(false);
      return false;
    }
    try {
      await writeFully(handle, [new Uint8Array(data.buffer, data.byteOffset, padded)], 0);
      if (padded !== data.length) await handle.truncate(data.length);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
      this.directPuts = Promise.resolve(false); // refused: nothing written that counts, the caller writes from the start
      await handle.truncate(0);
      return false;
    } finally {
      await handle.close();
    }
  }

  async sync(): Promise<void> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(this.root, 'r');
      syscalls.syncfs(handle.fd);
    } catch (error) {
      throw this.translate(error, '', 'sync');
    } finally {
      await handle?.close();
    }
  }

  async get(key: string): Promise<Buffer> {
    let data: Buffer;
    try {
      data = await readFile(this.pathOf(key));
    } catch (error) {
      throw this.translate(error, key, 'read');
    }
    if (data.length === 0) throw this.translate(Object.assign(new Error('empty file (crash debris)'), { code: 'ENOENT' }), key, 'read');
    return data;
  }

  /**
   * One pread of the range, into `into` when given, else a buffer of its own (it can move to a
   * worker thread), through
   * a handle kept open for the next read of the same file (local-read-handles.ts). With each
   * read the handle's file is checked to still have its name (an fstat beside the pread): a
   * pack deleted or replaced since (prune, maybe in another process) is opened again by name,
   * so a deleted one is `E_MISSING_OBJECT`, never bytes of a file that is gone.
   */
  async getRange(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    if (into !== undefined && into.length < length) throw new RangeError(`a buffer of ${into.length} bytes cannot hold the range ${offset}+${length} of ${key}`);
    const path = this.pathOf(key);
    for (let attempt = 0; ; attempt++) {
      let lease: ReadLease;
      try {
        lease = await this.readHandles.acquire(path);
      } catch (error) {
        throw this.translate(error, key, 'read');
      }
      try {
        const out = into === undefined ? Buffer.from(new ArrayBuffer(length)) : Buffer.from(into.buffer, into.byteOffset, length);
        const [linked, read] = await Promise.allSettled([lease.stillLinked(), readFully(lease.handle, out, offset, key)]);
        if (linked.status === 'fulfilled' && !linked.value) {
          this.readHandles.forget(path);
          if (attempt === 0) continue;
          throw this.translate(Object.assign(new Error('deleted while being read'), { code: 'ENOENT' }), key, 'read');
        }
        if (read.status === 'rejected') throw read.reason;
        if (linked.status === 'rejected') throw linked.reason;
        return out;
      } catch (error) {
        if (error instanceof CofferError) throw error;
        throw this.translate(error, key, 'read');
      } finally {
        lease.release();
      }
    }
  }

  /** Closes the file handles kept for ranged reads; the backend stays usable (reads open them again). */
  async close(): Promise<void> {
    await this.readHandles.closeAll();
  }

  async has(key: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(key))).size > 0;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw this.translate(error, key, 'stat');
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.pathOf(key));
      this.readHandles.forget(this.pathOf(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.translate(error, key, 'delete');
    }
  }

  async *list(prefix: string): AsyncIterable<BackendEntry> {
    // Walk only the directory the prefix names (keys are path-like), then filter.
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    yield* this.walk(base, prefix);
  }

  private async *walk(relative: string, prefix: string): AsyncIterable<BackendEntry> {
    let entries;
    try {
      entries = await readdir(relative === '' ? this.root : join(this.root, relative), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.translate(error, relative, 'list');
    }
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_PREFIX)) {
        if (entry.isFile()) this.temporariesSeen.add(join(this.root, relative, entry.name));
        continue;
      }
      const key = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(key, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const info = await stat(join(this.root, key)).catch(() => undefined);
        if (info !== undefined && info.size > 0) yield { key, size: info.size };
      }
    }
  }

  async removeStaleTemporaries(olderThanMs: number): Promise<{ files: number; bytes: number }> {
    const seen = [...this.temporariesSeen];
    this.temporariesSeen.clear();
    const cutoff = Date.now() - olderThanMs;
    let files = 0;
    let bytes = 0;
    for (const path of seen) {
      const info = await lstat(path).catch(() => undefined);
      if (info === undefined || !info.isFile() || info.mtimeMs > cutoff) continue;
      try {
        await unlink(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw this.translate(error, path, 'delete');
      }
      files++;
      bytes += info.size;
    }
    return { files, bytes };
  }

  private pathOf(key: string): string {
    return join(this.root, checkedKey(key).split('/').join(sep));
  }

  private async ensureDirectory(directory: string): Promise<void> {
    if (this.madeDirectories.has(directory)) return;
    try {
      await makeFolders(directory);
    } catch (error) {
      throw this.translate(error, directory, 'mkdir');
    }
    this.madeDirectories.add(directory);
  }

  private translate(error: unknown, key: string, action: string): CofferError {
    const code = (error as NodeJS.ErrnoException).code;
    const subject = { repository: this.root, object: key };
    if (code === 'ENOENT' && action === 'read') {
      return new CofferError('E_MISSING_OBJECT', `object ${key} is missing from ${this.root}`, { subject, cause: error });
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new CofferError('E_NO_SPACE', `no space left to ${action} ${key} in ${this.root}`, { subject, cause: error });
    }
    // The storage refuses (a read-only mount, permissions): said in words, not as the system's message.
    const refused: Record<string, string> = { EROFS: 'the filesystem is read-only (EROFS)', EACCES: 'permission denied (EACCES)', EPERM: 'permission denied (EPERM)' };
    const reason = (code !== undefined ? refused[code] : undefined) ?? (error instanceof Error ? error.message : String(error));
    return new CofferError('E_BACKEND_IO', `cannot ${action} ${key} in ${this.root}: ${reason}`, { subject, cause: error });
  }
}

/** Reads `out.length` bytes at `offset`; `E_CORRUPT_OBJECT` when the file ends first. */
async function readFully(handle: FileHandle, out: Buffer, offset: number, key: string): Promise<void> {
  let done = 0;
  while (done < out.length) {
    const { bytesRead } = await handle.read(out, done, out.length - done, offset + done);
    if (bytesRead === 0) throw shortObject(key, offset + done, offset, out.length);
    done += bytesRead;
  }
}
