import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { CofferError } from '../errors/index.js';
import { syscalls } from '../native/index.js';

/**
 * Where a restored disk is written.
 * - `zeroed`: ranges never written read as zeros (a new sparse file), so zero blocks are
 *   skipped and stay holes; otherwise they are written as zeros (a block device).
 * - `sequential`: writes must come in order with no gaps (a pipe); otherwise any order.
 * `finish` makes the data durable and closes; `abort` closes and removes a file it created.
 */
export interface DiskTarget {
  readonly path: string;
  readonly zeroed: boolean;
  readonly sequential: boolean;
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * Optional, for sequential targets: `length` bytes of zeros at `offset` (the next range in
   * order), recorded without being handed over as data — an image format leaves them
   * unallocated. Targets without it get zeros through `write`.
   */
  skipZeros?(offset: number, length: number): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * Opens a raw restore target: `-` for standard output, an existing block device (at least
 * `size` bytes), or a regular file, created sparse. An existing file is replaced only with
 * `overwrite`, so a restore never destroys data by accident.
 */
export async function openRawTarget(path: string, size: number, options: { overwrite: boolean; stdout?: Writable }): Promise<DiskTarget> {
  if (path === '-') return new StreamTarget(options.stdout ?? process.stdout);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isBlockDevice()) return openBlockDevice(path, size);
  if (existing !== undefined && !existing.isFile()) throw unwritable(path, 'it is neither a regular file nor a block device');
  if (existing !== undefined && !options.overwrite) throw unwritable(path, 'it exists (add --overwrite to replace it)');
  let handle: FileHandle;
  try {
    handle = await open(path, options.overwrite ? 'w' : 'wx', 0o600);
    await handle.truncate(size);
  } catch (error) {
    throw translate(path, error);
  }
  return new FileTarget(handle, path, true, existing === undefined);
}

async function openBlockDevice(path: string, size: number): Promise<DiskTarget> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r+');
  } catch (error) {
    throw translate(path, error);
  }
  const deviceSize = syscalls.seekEnd(handle.fd);
  if (deviceSize < size) {
    await handle.close();
    throw unwritable(path, `the device has ${deviceSize} bytes, the disk needs ${size}`);
  }
  return new FileTarget(handle, path, false, false);
}

class FileTarget implements DiskTarget {
  readonly sequential = false;
  /**
   * Writes to one file serialize on its inode lock in the kernel anyway; issuing them one at
   * a time avoids threads spinning on that lock (a quarter of a convert's CPU time when
   * four were in flight). Reads and decoding still overlap with the writing.
   */
  private lastWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly zeroed: boolean,
    private readonly created: boolean,
  ) {}

  write(offset: number, data: Uint8Array): Promise<void> {
    const write = this.lastWrite.then(() => this.writeNow(offset, data));
    this.lastWrite = write.catch(() => undefined);
    return write;
  }

  private async writeNow(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    try {
      while (done < data.length) {
        const { bytesWritten } = await this.handle.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
    } catch (error) {
      throw translate(this.path, error);
    }
  }

  async finish(): Promise<void> {
    try {
      await this.handle.datasync();
    } catch (error) {
      throw translate(this.path, error);
    } finally {
      await this.handle.close();
    }
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    if (this.created) await unlink(this.path).catch(() => undefined);
  }
}

class StreamTarget implements DiskTarget {
  readonly path = '-';
  readonly zeroed = false;
  readonly sequential = true;
  private position = 0;

  constructor(private readonly stream: Writable) {}

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (offset !== this.position) throw new Error(`stream target written at ${offset}, expected ${this.position}`);
    this.position += data.length;
    // Copy: the caller reuses its buffer once this resolves, the stream may still hold it.
    if (!this.stream.write(Buffer.from(data))) await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(translate('standard output', error));
      this.stream.once('error', onError);
      this.stream.once('drain', () => {
        this.stream.off('error', onError);
        resolve();
      });
    });
  }

  async finish(): Promise<void> {
    await new Promise<void>((resolve) => this.stream.write('', () => resolve()));
  }

  async abort(): Promise<void> {}
}

function unwritable(path: string, why: string): CofferError {
  return new CofferError('E_TARGET_UNWRITABLE', `cannot restore to ${path}: ${why}`, { subject: { path } });
}

function translate(path: string, error: unknown): CofferError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new CofferError('E_NO_SPACE', `no space left writing ${path}`, { subject: { path }, cause: error });
  if (code === 'EEXIST') return unwritable(path, 'it exists (add --overwrite to replace it)');
  const reason = error instanceof Error ? error.message : String(error);
  return new CofferError('E_TARGET_UNWRITABLE', `cannot write ${path}: ${reason}`, { subject: { path }, cause: error });
}
