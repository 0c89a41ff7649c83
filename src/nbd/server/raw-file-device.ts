import { open, type FileHandle } from 'node:fs/promises';
import { assertReadInBounds, type Extent } from '../../blockdev/index.js';
import { CofferError } from '../../errors/index.js';
import type { WritableBlockDevice } from '../../blockdev/index.js';

/**
 * A raw file of fixed size as a {@link WritableBlockDevice}: the simplest writable export
 * (a scratch disk, tests). Its extent map is one `data` extent (it does not look for holes);
 * `trim` does nothing, which the contract allows; `writeZeroes` writes zeros.
 */
export class RawFileDevice implements WritableBlockDevice {
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly size: number,
  ) {}

  /** Opens an existing file read-write. Throws `E_TARGET_UNWRITABLE` when it cannot. */
  static async open(path: string): Promise<RawFileDevice> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r+');
    } catch (error) {
      throw new CofferError('E_TARGET_UNWRITABLE', `cannot open ${path} for writing: ${(error as Error).message}`, { subject: { path }, cause: error });
    }
    return new RawFileDevice(handle, path, (await handle.stat()).size);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    for (let done = 0; done < length; ) {
      const { bytesRead } = await this.io(() => this.handle.read(target, done, length - done, offset + done), offset + done);
      if (bytesRead === 0) throw new CofferError('E_SOURCE_SHRUNK', `${this.path} ended at byte ${offset + done}`, { subject: { path: this.path, offset: offset + done } });
      done += bytesRead;
    }
    return target;
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    if (length > 0) yield { offset, length, kind: 'data' };
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    assertReadInBounds(this.size, offset, data.length);
    for (let done = 0; done < data.length; ) {
      const { bytesWritten } = await this.io(() => this.handle.write(data, done, data.length - done, offset + done), offset + done);
      done += bytesWritten;
    }
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    assertReadInBounds(this.size, offset, length);
    const zeros = new Uint8Array(Math.min(length, 1024 * 1024));
    for (let done = 0; done < length; done += zeros.length) await this.write(offset + done, zeros.subarray(0, Math.min(zeros.length, length - done)));
  }

  async trim(offset: number, length: number): Promise<void> {
    assertReadInBounds(this.size, offset, length);
  }

  async flush(): Promise<void> {
    await this.io(() => this.handle.datasync(), 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  private async io<T>(operation: () => Promise<T>, offset: number): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const errorCode = code === 'ENOSPC' || code === 'EDQUOT' ? 'E_NO_SPACE' : 'E_TARGET_UNWRITABLE';
      throw new CofferError(errorCode, `I/O error on ${this.path} at byte ${offset}: ${(error as Error).message}`, { subject: { path: this.path, offset }, cause: error });
    }
  }
}
