import { closeSync, constants, openSync } from 'node:fs';
import { syscalls } from '../native/index.js';
import { DIRECT_ALIGNMENT } from './direct-writes.js';
import { writeFullySync } from './write-fully.js';

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
  private start: number;
  private directFd: number | undefined;

  private constructor(
    private readonly fd: number,
    directFd: number,
    private readonly buffers: AlignedBuffers,
    offset: number,
  ) {
    this.directFd = directFd;
    this.bounce = buffers.acquire();
    this.start = offset;
  }

  /** For `path`, open as `fd` and written from `offset` (a sector boundary) on; undefined when O_DIRECT cannot be opened. */
  static open(path: string, fd: number, buffers: AlignedBuffers, offset = 0): DirectAppender | undefined {
    if (offset % DIRECT_ALIGNMENT !== 0) return undefined;
    try {
      return new DirectAppender(fd, openSync(path, constants.O_WRONLY | constants.O_DIRECT), buffers, offset);
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

/**
 * A free list of equal buffers that start on a {@link DIRECT_ALIGNMENT} boundary in memory
 * (Node's allocations do not), for {@link DirectAppender}s: taken and given back as files are
 * written, so each is allocated (and its pages faulted in) once.
 */
export class AlignedBuffers {
  private readonly free: Buffer[] = [];

  constructor(readonly bytes: number) {
    if (bytes <= 0 || bytes % DIRECT_ALIGNMENT !== 0) throw new RangeError(`aligned buffers hold whole sectors, not ${bytes} bytes`);
  }

  acquire(): Buffer {
    const kept = this.free.pop();
    if (kept !== undefined) return kept;
    const space = Buffer.allocUnsafeSlow(this.bytes + DIRECT_ALIGNMENT);
    const gap = syscalls.alignmentGap(space, DIRECT_ALIGNMENT);
    return space.subarray(gap, gap + this.bytes);
  }

  release(buffer: Buffer): void {
    this.free.push(buffer);
  }
}
