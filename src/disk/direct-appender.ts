import { closeSync, constants, openSync } from 'node:fs';
import { writeFullySync } from '../native/index.js';
import { DIRECT_ALIGNMENT, type AlignedBuffers } from './direct-writes.js';

/**
 * One file written front to back past the page cache, synchronously (a file-level restore
 * writes on its main thread: direct-writes.ts says why past the page cache, and where not).
 * The pieces come at any length (content-defined chunks): they are gathered in an aligned
 * buffer from {@link AlignedBuffers}, and each full buffer is written with O_DIRECT; at the
 * end, or before a hole, the whole sectors gathered go direct and the rest through the
 * file's ordinary descriptor (which the caller keeps and closes). After a hole that does not
 * end on a sector boundary, and once the filesystem refuses a direct write (EINVAL), the rest
 * of the file goes through the ordinary descriptor.
 */
export class DirectAppender {
  private readonly bounce: Buffer;
  /** Bytes gathered in {@link bounce}, and the file offset of its first byte. */
  private filled = 0;
  private start = 0;
  private directFd: number | undefined;

  private constructor(
    private readonly fd: number,
    directFd: number,
    private readonly buffers: AlignedBuffers,
  ) {
    this.directFd = directFd;
    this.bounce = buffers.acquire();
  }

  /** For `path`, open as `fd` and written from its start; undefined when O_DIRECT cannot be opened. */
  static open(path: string, fd: number, buffers: AlignedBuffers): DirectAppender | undefined {
    try {
      return new DirectAppender(fd, openSync(path, constants.O_WRONLY | constants.O_DIRECT), buffers);
    } catch {
      return undefined;
    }
  }

  /** Writes `data` at `offset`: where the last write ended, or past it (a hole). */
  write(data: Uint8Array, offset: number): void {
    if (offset !== this.start + this.filled) {
      this.drain();
      this.start = offset;
      if (offset % DIRECT_ALIGNMENT !== 0) this.stopDirect();
    }
    if (this.directFd === undefined) {
      writeFullySync(this.fd, data, offset);
      this.start = offset + data.length;
      return;
    }
    for (let from = 0; from < data.length; ) {
      const take = Math.min(data.length - from, this.bounce.length - this.filled);
      this.bounce.set(data.subarray(from, from + take), this.filled);
      this.filled += take;
      from += take;
      if (this.filled === this.bounce.length) this.drain();
    }
  }

  /** Writes what is gathered; the appender then holds nothing. */
  finish(): void {
    this.drain();
  }

  /** Closes the O_DIRECT descriptor and gives the buffer back (the caller closes `fd`). */
  close(): void {
    this.stopDirect();
    this.buffers.release(this.bounce);
  }

  /** The whole sectors gathered direct, the rest through the ordinary descriptor. */
  private drain(): void {
    const sectors = this.filled - (this.filled % DIRECT_ALIGNMENT);
    if (sectors > 0 && this.directFd !== undefined) {
      try {
        writeFullySync(this.directFd, this.bounce.subarray(0, sectors), this.start);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
        this.stopDirect();
        writeFullySync(this.fd, this.bounce.subarray(0, sectors), this.start);
      }
    } else if (sectors > 0) writeFullySync(this.fd, this.bounce.subarray(0, sectors), this.start);
    if (this.filled > sectors) writeFullySync(this.fd, this.bounce.subarray(sectors, this.filled), this.start + sectors);
    this.start += this.filled;
    this.filled = 0;
    // A tail through the page cache leaves the next byte off a sector boundary: the rest goes there too.
    if (this.start % DIRECT_ALIGNMENT !== 0) this.stopDirect();
  }

  private stopDirect(): void {
    if (this.directFd !== undefined) closeSync(this.directFd);
    this.directFd = undefined;
  }
}
