import { open, stat, type FileHandle } from 'node:fs/promises';
import { CofferError } from '../errors/index.js';
import { syscalls } from '../native/index.js';
import { fileDataRuns, type DataRun } from './file-data-runs.js';

/** A block device's `Placement` without its guest range: where some bytes of an image's file are, or that they must be read. */
export type HostPlacement = { kind: 'file'; fd: number; at: number } | { kind: 'read' };

/**
 * A disk image file opened read-only, with the one read every format parser uses:
 * `readAt(offset, length)`, which returns exactly `length` bytes or throws
 * `E_IMAGE_INVALID` naming the image when the range lies past its end (a truncated image,
 * a table offset pointing outside the file). Parsers stay pure: they get bytes from here
 * and bound every size and offset they read from the image before using it.
 */
export class ImageFile {
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly size: number,
  ) {}

  /** Opens `path`; `E_SOURCE_UNREADABLE` if it cannot be opened. */
  static async open(path: string): Promise<ImageFile> {
    await refuseNamedPipe(path);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
      throw new CofferError('E_SOURCE_UNREADABLE', `cannot read ${path}: ${reason}`, { subject: { path }, cause: error });
    }
    try {
      const info = await handle.stat();
      if (!info.isFile() && !info.isBlockDevice()) {
        throw new CofferError('E_SOURCE_UNREADABLE', `${path} is neither a disk image file nor a block device`, { subject: { path } });
      }
      return new ImageFile(handle, path, info.isFile() ? info.size : syscalls.seekEnd(handle.fd));
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** The file descriptor, for allocation queries (SEEK_DATA) on raw images. */
  get fd(): number {
    return this.handle.fd;
  }

  /** Exactly `length` bytes at `offset`, into `into` when given. */
  async readAt(offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    this.checkRange(offset, length);
    const target = into === undefined ? Buffer.alloc(length) : Buffer.from(into.buffer, into.byteOffset, length);
    let done = 0;
    while (done < length) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.handle.read(target, done, length - done, offset + done));
      } catch (error) {
        throw new CofferError('E_SOURCE_UNREADABLE', `cannot read ${this.path} at byte ${offset + done}: ${(error as Error).message}`, {
          subject: { path: this.path, offset: offset + done },
          cause: error,
        });
      }
      if (bytesRead === 0) {
        throw new CofferError('E_SOURCE_SHRUNK', `${this.path} ended at byte ${offset + done} while it was read`, { subject: { path: this.path, offset: offset + done } });
      }
      done += bytesRead;
    }
    return target;
  }

  /**
   * Where `length` bytes at `offset` lie, for a copy that takes them file to file
   * (a block device's `Placement`): checked as {@link readAt} checks them.
   */
  placeAt(offset: number, length: number): HostPlacement {
    this.checkRange(offset, length);
    return { kind: 'file', fd: this.handle.fd, at: offset };
  }

  /**
   * Where the file holds data in `[at, at + length)` and where it has holes (which read as
   * zeros), from SEEK_DATA/SEEK_HOLE: a thin-provisioned flat extent is mostly holes, and
   * they need no reading. Without SEEK_DATA (a device, a file system that lacks it) the range
   * is one data run. A hole running to the end of a file that shrank since it was opened is
   * `E_SOURCE_SHRUNK`, not zeros.
   */
  dataRuns(at: number, length: number): AsyncIterable<DataRun> {
    this.checkRange(at, length);
    return fileDataRuns(this.handle.fd, at, at + length, {
      trailingHole: () => this.assertNotShrunk(at + length),
      failed: (error, position) =>
        new CofferError('E_SOURCE_UNREADABLE', `cannot map ${this.path} at byte ${position}: ${(error as Error).message}`, { subject: { path: this.path, offset: position }, cause: error }),
    });
  }

  /** No data found past a point: the file must still reach `end` (a shrunk file's lost tail is no hole). */
  private async assertNotShrunk(end: number): Promise<void> {
    const info = await this.handle.stat();
    if (info.isFile() && info.size < end) {
      throw new CofferError('E_SOURCE_SHRUNK', `${this.path} shrank from ${this.size} to ${info.size} bytes while it was read`, { subject: { path: this.path, offset: info.size } });
    }
  }

  /** A range a table of the image points to must lie in the file: `E_IMAGE_INVALID` otherwise (a truncated or corrupt image). */
  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw this.invalid(`needs bytes ${offset}..${offset + length} but the file has ${this.size}`);
    }
  }

  /** An `E_IMAGE_INVALID` error about this image. */
  invalid(problem: string, offset?: number): CofferError {
    return new CofferError('E_IMAGE_INVALID', `${this.path}: ${problem}`, { subject: offset === undefined ? { path: this.path } : { path: this.path, offset } });
  }

  /** An `E_UNSUPPORTED_FORMAT` error about this image. */
  unsupported(feature: string): CofferError {
    return new CofferError('E_UNSUPPORTED_FORMAT', `${this.path}: ${feature} is not supported`, { subject: { path: this.path } });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/**
 * `E_SOURCE_UNREADABLE` when `path` is a named pipe (FIFO): opening one blocks until a writer
 * comes, perhaps never, and no signal ends the wait; it is refused before it is opened. A
 * stream is backed up with `--stdin`. Anything else (absent included) is left to the open.
 */
export async function refuseNamedPipe(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (info?.isFIFO() === true) {
    throw new CofferError('E_SOURCE_UNREADABLE', `${path} is a named pipe, not a disk image file or block device (to back up a stream, pipe it to 'coffer backup --stdin')`, { subject: { path } });
  }
}
