import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { CofferError } from '../../errors/index.js';
import { syscalls } from '../../native/index.js';
import type { Backend, BackendEntry } from './backend.js';
import { checkedKey } from './backend-key.js';
import { shortObject } from './read-range.js';

const TEMP_PREFIX = '.tmp-';

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
  private readonly madeDirectories = new Set<string>();

  constructor(readonly root: string) {
    this.location = root;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    const directory = dirname(path);
    await this.ensureDirectory(directory);
    const temp = join(directory, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      const handle = await open(temp, 'wx', 0o600);
      try {
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await handle.write(data, written, data.length - written);
          written += bytesWritten;
        }
      } finally {
        await handle.close();
      }
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw this.translate(error, key, 'write');
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

  /** One pread of the range, into a buffer of its own (it can move to a worker thread). */
  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(this.pathOf(key), 'r');
      const out = Buffer.from(new ArrayBuffer(length));
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw shortObject(key, offset + done, offset, length);
        done += bytesRead;
      }
      return out;
    } catch (error) {
      if (error instanceof CofferError) throw error;
      throw this.translate(error, key, 'read');
    } finally {
      await handle?.close();
    }
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
      if (entry.name.startsWith(TEMP_PREFIX)) continue;
      const key = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(key, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const info = await stat(join(this.root, key)).catch(() => undefined);
        if (info !== undefined && info.size > 0) yield { key, size: info.size };
      }
    }
  }

  private pathOf(key: string): string {
    return join(this.root, checkedKey(key).split('/').join(sep));
  }

  private async ensureDirectory(directory: string): Promise<void> {
    if (this.madeDirectories.has(directory)) return;
    try {
      await mkdir(directory, { recursive: true });
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
    const reason = error instanceof Error ? error.message : String(error);
    return new CofferError('E_BACKEND_IO', `cannot ${action} ${key} in ${this.root}: ${reason}`, { subject, cause: error });
  }
}
