import { closeSync, constants, openSync } from 'node:fs';
import { copyBytes, writeFullyAt, writeFullySync } from '../native/index.js';
import { DIRECT_ALIGNMENT, type AlignedBuffers } from './direct-writes.js';

/**
 * One file written front to back past the page cache (a file-level restore: direct-writes.ts
 * says why past the page cache, and where not). The pieces come at any length
 * (content-defined chunks): they are gathered in an aligned buffer from {@link AlignedBuffers},
 * and each full buffer is written with O_DIRECT on libuv's pool while the next one fills (two
 * buffers per file: a direct write waits for the device, ~0.4 ms a MiB here, which the
 * restore's main thread, its bottleneck, paid for every large file when it wrote
 * synchronously). At the end, or before a hole, the whole sectors gathered go direct and the
 * rest through the file's ordinary descriptor (which the caller keeps and closes, after
 * {@link close}). After a hole that does not end on a sector boundary, and once the filesystem
 * refuses a direct write (EINVAL), the rest of the file goes through the ordinary descriptor.
 */
export class DirectAppender {
  private bounce: Buffer;
  private spare: Buffer;
  /** Bytes gathered in {@link bounce}, and the file offset of its first byte. */
  private filled = 0;
  private start = 0;
  private directFd: number | undefined;
  /** The direct write in flight (of {@link spare}), if any. */
  private writing: Promise<void> | undefined;

  private constructor(
    private readonly fd: number,
    directFd: number,
    private readonly buffers: AlignedBuffers,
  ) {
    this.directFd = directFd;
    this.bounce = buffers.acquire();
    this.spare = buffers.acquire();
  }

  /** For `path`, open as `fd` and written from its start; undefined when O_DIRECT cannot be opened. */
  static open(path: string | Buffer, fd: number, buffers: AlignedBuffers): DirectAppender | undefined {
    try {
      return new DirectAppender(fd, openSync(path, constants.O_WRONLY | constants.O_DIRECT), buffers);
    } catch {
      return undefined;
    }
  }

  /** Writes `data` at `offset`: where the last write ended, or past it (a hole). `data` may be reused once this settles. */
  async write(data: Uint8Array, offset: number): Promise<void> {
    if (offset !== this.start + this.filled) {
      await this.drain();
      this.start = offset;
      if (offset % DIRECT_ALIGNMENT !== 0) await this.stopDirect();
    }
    if (this.directFd === undefined) {
      writeFullySync(this.fd, data, offset);
      this.start = offset + data.length;
      return;
    }
    for (let from = 0; from < data.length; ) {
      const take = Math.min(data.length - from, this.bounce.length - this.filled);
      copyBytes(this.bounce, data.subarray(from, from + take), this.filled);
      this.filled += take;
      from += take;
      if (this.filled === this.bounce.length) await this.sendFull();
    }
  }

  /** Writes what is gathered and waits for every write: the appender then holds nothing. */
  async finish(): Promise<void> {
    await this.drain();
  }

  /**
   * Waits for the write in flight (its failure is left to {@link finish}'s caller: one that
   * closes after a failure has its own), closes the O_DIRECT descriptor and gives the buffers
   * back (the caller closes `fd`, after this settles).
   */
  async close(): Promise<void> {
    await this.writing?.catch(() => undefined);
    this.writing = undefined;
    await this.stopDirect();
    this.buffers.release(this.bounce);
    this.buffers.release(this.spare);
  }

  /** A full buffer: written direct on the pool once the previous write is done, while the other fills. */
  private async sendFull(): Promise<void> {
    await this.settle();
    const full = this.bounce;
    const at = this.start;
    this.bounce = this.spare;
    this.spare = full;
    this.start += this.filled;
    this.filled = 0;
    const writing = this.sendDirect(full, at);
    writing.catch(() => undefined); // awaited by the next settle
    this.writing = writing;
  }

  /** `data` written direct at `at`; through the ordinary descriptor once direct writes stopped or the filesystem refuses them (EINVAL). */
  private async sendDirect(data: Buffer, at: number): Promise<void> {
    if (this.directFd !== undefined) {
      try {
        await writeFullyAt(this.directFd, data, at);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
        this.closeDirect();
      }
    }
    writeFullySync(this.fd, data, at);
  }

  /** Waits for the write in flight; throws its failure. */
  private async settle(): Promise<void> {
    const writing = this.writing;
    this.writing = undefined;
    await writing;
  }

  /** The whole sectors gathered direct, the rest through the ordinary descriptor; nothing in flight after. */
  private async drain(): Promise<void> {
    await this.settle();
    const sectors = this.filled - (this.filled % DIRECT_ALIGNMENT);
    if (sectors > 0) await this.sendDirect(this.bounce.subarray(0, sectors), this.start);
    if (this.filled > sectors) writeFullySync(this.fd, this.bounce.subarray(sectors, this.filled), this.start + sectors);
    this.start += this.filled;
    this.filled = 0;
    // A tail through the page cache leaves the next byte off a sector boundary: the rest goes there too.
    if (this.start % DIRECT_ALIGNMENT !== 0) await this.stopDirect();
  }

  /** No more direct writes: the one in flight finished first (its descriptor is not closed under it). */
  private async stopDirect(): Promise<void> {
    await this.settle();
    this.closeDirect();
  }

  private closeDirect(): void {
    if (this.directFd !== undefined) closeSync(this.directFd);
    this.directFd = undefined;
  }
}
