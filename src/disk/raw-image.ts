import { open, type FileHandle } from 'node:fs/promises';
import { assertReadInBounds, type Extent, type Placement } from '../blockdev/index.js';
import { CofferError } from '../errors/index.js';
import { syscalls } from '../native/index.js';
import type { DiskImage } from './disk-image.js';
import { fileDataRuns } from './file-data-runs.js';
import { refuseNamedPipe } from './image-file.js';
import { extentPlacements } from './segments.js';

/**
 * A raw disk image (a regular file, sparse or not) or a block device, as a block device.
 * The extent map comes from `SEEK_DATA`/`SEEK_HOLE`: holes are `zero` and are never read.
 * Filesystems without hole support report one data extent, which is still correct.
 */
export class RawImage implements DiskImage {
  readonly format = 'raw' as const;
  readonly backing = null;
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly size: number,
  ) {}

  /** Opens `path` read-only. Throws `E_SOURCE_UNREADABLE` when it cannot be opened. */
  static async open(path: string): Promise<RawImage> {
    await refuseNamedPipe(path);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw unreadable(path, error);
    }
    try {
      const info = await handle.stat();
      if (!info.isFile() && !info.isBlockDevice()) {
        throw new CofferError('E_SOURCE_UNREADABLE', `${path} is neither a disk image file nor a block device`, { subject: { path } });
      }
      const size = info.isFile() ? info.size : syscalls.seekEnd(handle.fd);
      return new RawImage(handle, path, size);
    } catch (error) {
      await handle.close();
      throw error instanceof CofferError ? error : unreadable(path, error);
    }
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    let done = 0;
    while (done < target.length) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.handle.read(target, done, target.length - done, offset + done));
      } catch (error) {
        throw unreadable(this.path, error, offset + done);
      }
      if (bytesRead === 0) {
        throw new CofferError('E_SOURCE_SHRUNK', `${this.path} ended at byte ${offset + done} while it was read (it had ${this.size} bytes when opened)`, {
          subject: { path: this.path, offset: offset + done },
        });
      }
      done += bytesRead;
    }
    return target;
  }

  /** The file's data where it lies, its holes as zeros. */
  placements(offset: number, length: number): AsyncIterable<Placement> {
    return extentPlacements(this.extents(offset, length), (at) => ({ kind: 'file', fd: this.handle.fd, at }));
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    const runs = fileDataRuns(this.handle.fd, offset, offset + length, {
      trailingHole: () => this.assertNotShrunk(),
      failed: (error, position) => unreadable(this.path, error, position),
    });
    for await (const run of runs) yield { offset: run.at, length: run.length, kind: run.data ? 'data' : 'zero', layer: 0 };
  }

  /**
   * A file truncated while read would show its lost tail as a hole, which reads as zeros:
   * check the size before trusting a trailing hole, so a shrink is an error, not silent zeros.
   */
  private async assertNotShrunk(): Promise<void> {
    const info = await this.handle.stat();
    const now = info.isFile() ? info.size : syscalls.seekEnd(this.handle.fd);
    if (now < this.size) {
      throw new CofferError('E_SOURCE_SHRUNK', `${this.path} shrank from ${this.size} to ${now} bytes while it was read`, { subject: { path: this.path, offset: now } });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

function unreadable(path: string, error: unknown, offset?: number): CofferError {
  const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : error instanceof Error ? error.message : String(error);
  return new CofferError('E_SOURCE_UNREADABLE', `cannot read ${path}${offset === undefined ? '' : ` at byte ${offset}`}: ${reason}`, {
    subject: offset === undefined ? { path } : { path, offset },
    cause: error,
  });
}
