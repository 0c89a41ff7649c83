import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { CofferError } from '../errors/index.js';
import { copyFileRanges, syscalls, writeFully, type CopyRangesError, type FileRange } from '../native/index.js';
import { DIRECT_ALIGNMENT, DirectWriter } from './direct-writes.js';
import { OutputStream } from './output-stream.js';
import { targetError } from './target-error.js';
import { TargetFile } from './target-file.js';

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
  /**
   * Writes `data` at `offset`; the caller keeps `data` untouched until the promise resolves.
   * Any target may be called again before the previous write resolved: a non-sequential one
   * orders or batches its writes itself; a sequential one must be called in disk order (the
   * next call may come before the previous resolved: it takes the calls in the order made).
   */
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * Optional, for sequential targets: `length` bytes of zeros at `offset` (the next range in
   * order), recorded without being handed over as data — an image format leaves them
   * unallocated. Targets without it get zeros through `write`.
   */
  skipZeros?(offset: number, length: number): Promise<void>;
  /**
   * Optional, for targets in a file: writes each range's bytes of an open file at the range's
   * offset, file to file, without them passing through this process's memory (a convert's data
   * clusters). A zeroed target leaves the 4 KiB pieces of zeros in them unwritten. Resolves with
   * the bytes written. A failure to read an input is thrown as the {@link CopyRangesError} it is
   * (`side: 'read'`; the caller knows what the input is), a failure to write as the target's.
   * Ranges of one call may be copied in any order, and calls may overlap (they cover different bytes).
   */
  copyFrom?(ranges: readonly FileRange[]): Promise<number>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * Opens a raw restore target: `-` for standard output, an existing block device (at least
 * `size` bytes), or a regular file, created sparse. An existing file is replaced only with
 * `overwrite`, so a restore never destroys data by accident. A file or device is written
 * past the page cache where it allows it (direct-writes.ts; `direct: false` never does);
 * `flushEveryBytes` (default {@link FLUSH_EVERY_BYTES}) sets how much a file or device target
 * writes through the page cache between background flushes.
 */
export async function openRawTarget(path: string, size: number, options: { overwrite: boolean; stdout?: Writable; flushEveryBytes?: number; direct?: boolean }): Promise<DiskTarget> {
  if (path === '-') return new StreamTarget(options.stdout ?? process.stdout);
  const existing = await stat(path).catch(() => undefined);
  const flushEveryBytes = options.flushEveryBytes ?? FLUSH_EVERY_BYTES;
  const direct = options.direct ?? true;
  if (existing?.isBlockDevice()) return openBlockDevice(path, size, flushEveryBytes, direct);
  if (existing !== undefined && !existing.isFile()) throw unwritable(path, 'it is neither a regular file nor a block device');
  // A new file, or one beside the file it replaces (target-file.ts: the old image stays until the new one is whole).
  const file = await TargetFile.create(path, existing, { overwrite: options.overwrite });
  try {
    await file.handle.truncate(size);
  } catch (error) {
    await file.handle.close().catch(() => undefined);
    await file.discard();
    throw file.translate(error);
  }
  return new FileTarget(file.handle, direct ? await DirectWriter.open(file.writePath) : undefined, path, true, file, flushEveryBytes);
}

async function openBlockDevice(path: string, size: number, flushEveryBytes: number, direct: boolean): Promise<DiskTarget> {
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
  return new FileTarget(handle, direct ? await DirectWriter.open(path) : undefined, path, false, undefined, flushEveryBytes);
}

class FileTarget implements DiskTarget {
  readonly sequential = false;
  /**
   * Writes to one file serialize on its inode lock in the kernel anyway; issuing them one at
   * a time avoids threads spinning on that lock (a quarter of a convert's CPU time when
   * four were in flight). Reads and decoding still overlap with the writing. Writes that
   * arrive while one is under way wait in `queued`; the next write takes the lowest offset
   * and every queued block that continues it, as one `pwritev` (up to {@link MAX_RUN_BUFFERS}
   * buffers, {@link MAX_RUN_BYTES}): one thread-pool round trip instead of one per block. A
   * restore of 256 KiB blocks issued one pwrite each had 20 of its 32 blocks in flight
   * waiting for their turn to be written on a loaded machine (2026-11-26, S3 restore, load 12).
   */
  private readonly queued: QueuedWrite[] = [];
  private writing = false;
  /**
   * Written through the page cache since the last flush was started (direct writes,
   * direct-writes.ts, need none). Every `flushEveryBytes` a `datasync` runs
   * in the background (one at a time) while the restore goes on, so the page cache is written
   * out as the data comes instead of all at `finish` (the kernel's own write-back starts only
   * at a tenth of memory: a 2.4 GB restore on a 23 GiB machine left 0.3-1.0 s of flushing for
   * the end). A flush's error is kept (`flushError`): later writes fail with it and `finish`
   * reports it, because Linux tells a write-back error to one fsync of an open file only.
   */
  private unflushedBytes = 0;
  private flushing: Promise<void> | undefined;
  private flushError: unknown;

  constructor(
    private readonly handle: FileHandle,
    /** Writes past the page cache, where the filesystem allows them (direct-writes.ts). */
    private readonly direct: DirectWriter | undefined,
    readonly path: string,
    readonly zeroed: boolean,
    /** The regular file written (undefined: a block device), committed by `finish`, discarded by `abort`. */
    private readonly file: TargetFile | undefined,
    private readonly flushEveryBytes: number,
  ) {}

  write(offset: number, data: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ offset, data, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queued.length > 0) {
      const run = takeRun(this.queued);
      try {
        // A failed flush means data already written may be lost: stop writing (the restore
        // fails now instead of after the rest of the disk), finish reports it too.
        if (this.flushError !== undefined) throw this.flushError;
        const buffered = await this.writeRun(run);
        for (const write of run) write.resolve();
        if (buffered) for (const write of run) this.unflushedBytes += write.data.length;
        if (this.unflushedBytes >= this.flushEveryBytes && this.flushing === undefined) this.startFlush();
      } catch (error) {
        const failure = this.translate(error);
        for (const write of run) write.reject(failure);
      }
    }
    this.writing = false;
  }

  /**
   * Writes contiguous blocks: direct when aligned and allowed, else with one pwritev through
   * the page cache (more only if the kernel writes less). Returns whether it went buffered.
   */
  private async writeRun(run: QueuedWrite[]): Promise<boolean> {
    let buffers = run.map((write) => write.data);
    let position = (run[0] as QueuedWrite).offset;
    // The whole sectors go direct; a short end (a disk's last block) through the page cache.
    const length = buffers.reduce((n, b) => n + b.length, 0);
    const sectors = length - (length % DIRECT_ALIGNMENT);
    if (this.direct?.accepts(position, sectors) === true) {
      const [head, tail] = splitAt(buffers, sectors);
      if (await this.direct.write(head, position)) {
        if (tail.length === 0) return false;
        buffers = tail;
        position += sectors;
      }
    }
    await writeFully(this.handle, buffers, position);
    return true;
  }

  async copyFrom(ranges: readonly FileRange[]): Promise<number> {
    if (this.flushError !== undefined) throw this.translate(this.flushError);
    const directFd = this.direct?.descriptorForCopies() ?? -1;
    let copied;
    try {
      copied = await copyFileRanges(ranges, this.handle.fd, { directFd, skipZeros: this.zeroed });
    } catch (error) {
      if ((error as CopyRangesError).side !== 'write') throw error; // the source's (copy-device.ts says so), or no memory for the copy
      throw this.translate(error);
    }
    if (copied.refused) this.direct?.refuse();
    this.unflushedBytes += copied.written - copied.direct;
    if (this.unflushedBytes >= this.flushEveryBytes && this.flushing === undefined) this.startFlush();
    return copied.written;
  }

  private startFlush(): void {
    this.unflushedBytes = 0;
    this.flushing = this.handle
      .datasync()
      .catch((error: unknown) => {
        this.flushError ??= error;
      })
      .finally(() => {
        this.flushing = undefined;
      });
  }

  async finish(): Promise<void> {
    try {
      // The background flush's error must be kept: Linux reports a write-back error to one
      // fsync per open file only, so the datasync below would succeed over lost data.
      await this.flushing;
      if (this.flushError !== undefined) throw this.flushError;
      await this.direct?.close();
      // Direct writes reached the device, perhaps only its volatile cache: this flushes it, and commits the file's extents.
      await this.handle.datasync();
    } catch (error) {
      await this.handle.close().catch(() => undefined);
      await this.file?.discard();
      throw this.translate(error);
    }
    await this.handle.close();
    await this.file?.commit();
  }

  async abort(): Promise<void> {
    await this.flushing;
    await this.direct?.close().catch(() => undefined);
    await this.handle.close().catch(() => undefined);
    await this.file?.discard();
  }

  private translate(error: unknown): CofferError {
    return this.file?.translate(error) ?? translate(this.path, error);
  }
}

/**
 * How many bytes a {@link FileTarget} writes between two background flushes. 256 MiB left the
 * final fdatasync of a 4 GiB restore (2.4 GB written) at 0.01-0.07 s instead of 0.3-1.0 s;
 * 64 MiB and 1 GiB measured no better (bench/README.md, "Restore's final flush").
 */
const FLUSH_EVERY_BYTES = 256 * 1024 * 1024;

/** `buffers` as the views of their first `bytes` bytes and the views of the rest. */
function splitAt(buffers: readonly Uint8Array[], bytes: number): [Uint8Array[], Uint8Array[]] {
  const head: Uint8Array[] = [];
  const tail: Uint8Array[] = [];
  let left = bytes;
  for (const buffer of buffers) {
    if (left >= buffer.length) head.push(buffer);
    else if (left <= 0) tail.push(buffer);
    else {
      head.push(buffer.subarray(0, left));
      tail.push(buffer.subarray(left));
    }
    left -= buffer.length;
  }
  return [head, tail];
}

/** A write waiting in {@link FileTarget}'s queue. */
interface QueuedWrite {
  offset: number;
  data: Uint8Array;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Most buffers in one pwritev: Linux's IOV_MAX. */
const MAX_RUN_BUFFERS = 1024;
/** Most bytes in one pwritev: the run's buffers are all held until it completes. */
const MAX_RUN_BYTES = 16 * 1024 * 1024;

/**
 * Removes from `queued` and returns the write with the lowest offset and the writes that
 * continue it without a gap, within {@link MAX_RUN_BUFFERS} and {@link MAX_RUN_BYTES}.
 */
export function takeRun<W extends { offset: number; data: Uint8Array }>(queued: W[]): W[] {
  queued.sort((a, b) => a.offset - b.offset);
  let count = 1;
  let end = (queued[0] as W).offset + (queued[0] as W).data.length;
  let bytes = (queued[0] as W).data.length;
  while (count < queued.length && count < MAX_RUN_BUFFERS) {
    const next = queued[count] as W;
    if (next.offset !== end || bytes + next.data.length > MAX_RUN_BYTES) break;
    end += next.data.length;
    bytes += next.data.length;
    count++;
  }
  return queued.splice(0, count);
}

class StreamTarget implements DiskTarget {
  readonly path = '-';
  readonly zeroed = false;
  readonly sequential = true;
  private position = 0;
  private readonly output: OutputStream;

  constructor(stream: Writable) {
    this.output = new OutputStream(stream);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (offset !== this.position) throw new Error(`stream target written at ${offset}, expected ${this.position}`);
    this.position += data.length;
    await this.output.write(data);
  }

  finish(): Promise<void> {
    return this.output.finish();
  }

  async abort(): Promise<void> {}
}

function unwritable(path: string, why: string): CofferError {
  return new CofferError('E_TARGET_UNWRITABLE', `cannot write ${path}: ${why}`, { subject: { path } });
}

function translate(path: string, error: unknown): CofferError {
  return targetError(path, error, { exists: 'it exists (add --overwrite to replace it)' });
}
