import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { AlignedBuffers, DIRECT_ALIGNMENT, syscalls, takesDirectWrites, writeFully } from '../native/index.js';

/**
 * Writes that bypass the page cache (O_DIRECT), for a restore's raw target (raw-target.ts).
 *
 * Why: a restore writes gigabytes the restoring host will not read again soon. Through the
 * page cache each page is allocated, copied into, written back later and evicted: on this
 * project's machines 2.4 GB written and flushed took 1.0-5.0 s and 0.5-4.3 s of system CPU,
 * depending on how much memory the host had handed the VM before (`dd bs=2M count=1200
 * conv=fdatasync`); with O_DIRECT 0.8-1.25 s and 0.15-0.27 s of system CPU, every time. A
 * hypervisor's page cache also holds its running VMs' data: a restore that fills it evicts
 * theirs (qemu-img's `-t none` and the enterprise products write unbuffered for the same
 * reason).
 *
 * What O_DIRECT asks: the file offset, the length and the memory address of every write
 * aligned to the device's logical block size ({@link DIRECT_ALIGNMENT} covers 512 and 4096).
 * A write that is not (the short last block of a disk whose size is not a multiple of 4 KiB)
 * goes through the buffered handle instead, which the caller keeps; the two never write the
 * same bytes. Node's buffers are not aligned in memory, so data is copied into aligned
 * bounce buffers of {@link BOUNCE_BYTES} on the way (a memcpy: the kernel's own copy into the
 * page cache is what it replaces), written in the background while the caller goes on
 * ({@link DirectWriter}); a run whose buffers are all aligned already is written from them
 * directly.
 *
 * Only block devices and files on the local disk filesystems (native/direct-io.ts: ext4,
 * XFS, btrfs) are written so. On a network filesystem (NFS, SMB) O_DIRECT turns each write into
 * a synchronous round trip to the server with no write-behind — far slower than the page cache
 * for a restore that issues one write at a time; on a filesystem in memory (tmpfs, ramfs) the
 * page cache is the storage, so it saves nothing and would add the bounce copy; FUSE and
 * overlay filesystems vary. Those keep the page cache.
 *
 * Where the filesystem refuses O_DIRECT (tmpfs before Linux 6.6, some FUSE filesystems): at
 * open, or with EINVAL at the first write, {@link DirectWriter.open} returns undefined or
 * {@link DirectWriter.write} returns false, and the caller writes through the page cache as
 * before. Durability is unchanged: the device's own cache is flushed by the caller's
 * `fdatasync` at the end (and the file's extents committed with it).
 */
export { DIRECT_ALIGNMENT, AlignedBuffers, takesDirectWrites } from '../native/index.js';

/** A bounce buffer: 4 MiB, 16 aligned writes per 64 MiB (a restore's runs are up to 16 MiB). */
const BOUNCE_BYTES = 4 * 1024 * 1024;
/**
 * Bounce buffers being written at once: one the device writes, one filled meanwhile, one queued
 * (a filesystem that allocates blocks for a write takes them one at a time on its inode lock).
 */
const BOUNCES_IN_FLIGHT = 3;

/** A bounce buffer's write under way: its range, so that a later write to the same bytes waits for it. */
interface WriteInFlight {
  start: number;
  end: number;
  buffer: Buffer;
  done: Promise<void>;
}

/**
 * Direct writes to one file or device. Data in unaligned memory (a restore's frame slots: the
 * usual case) is copied into a bounce buffer and written from there, and {@link write} returns
 * once its bytes are copied, not written: up to {@link BOUNCES_IN_FLIGHT} bounce buffers are
 * being written while the caller goes on (its memory is free again at once: a restore's frame
 * slots go back to the codec threads while the device works). The device then writes without
 * pause, and the copy of the next 4 MiB overlaps the write of the last. A write that fails
 * in the background fails the next {@link write} and {@link close}: a restore stops at its
 * next write and never reports success over lost data. Writes in flight never cover the same
 * bytes as a new one (it waits for them). Data already aligned is written from the caller's
 * memory and awaited (the caller may reuse it once `write` returns).
 */
export class DirectWriter {
  /** The bounce buffers, allocated as the first writes need them. */
  private readonly bounces = new AlignedBuffers(BOUNCE_BYTES);
  private readonly inFlight: WriteInFlight[] = [];
  /** The first failure of a write in the background: every later call throws it. */
  private failure: { error: unknown } | undefined;
  /** The filesystem refused a direct write (EINVAL): every write goes buffered from then on. */
  private refused = false;
  /** A direct write has succeeded: the filesystem takes them, later ones need not be awaited to know it. */
  private proven = false;
  private closed = false;

  private constructor(private readonly handle: FileHandle) {}

  /** Opens `path` (which exists) for direct writes: a block device, or a file on ext4, XFS or btrfs ({@link takesDirectWrites}); otherwise (or where O_DIRECT is refused) undefined. */
  static async open(path: string): Promise<DirectWriter | undefined> {
    try {
      if (!(await takesDirectWrites(path))) return undefined;
      return new DirectWriter(await open(path, constants.O_WRONLY | constants.O_DIRECT));
    } catch {
      return undefined;
    }
  }

  /**
   * The O_DIRECT descriptor, for copies made outside this writer (copy-file-ranges.c: it writes
   * aligned runs there, and says when the filesystem refused one), or -1 once refused.
   */
  descriptorForCopies(): number {
    return this.refused || this.closed ? -1 : this.handle.fd;
  }

  /** A copy outside this writer found direct writes refused (EINVAL): every write goes buffered from now on. */
  refuse(): void {
    this.refused = true;
  }

  /** Whether a write at `offset` of `length` bytes can go direct. */
  accepts(offset: number, length: number): boolean {
    return !this.refused && offset % DIRECT_ALIGNMENT === 0 && length % DIRECT_ALIGNMENT === 0 && length > 0;
  }

  /**
   * Writes `buffers` back to back at `position` (aligned, see {@link accepts}); resolves once
   * the caller's memory is no longer needed (see the class). Returns false, having written
   * nothing that counts, when the filesystem refuses direct writes: the caller writes them
   * buffered. @throws the write's error otherwise (ENOSPC…), or that of an earlier write that
   * failed in the background.
   */
  async write(buffers: readonly Uint8Array[], position: number): Promise<boolean> {
    this.throwFailure();
    try {
      if (buffers.every((b) => b.length % DIRECT_ALIGNMENT === 0 && syscalls.alignmentGap(b, DIRECT_ALIGNMENT) === 0)) {
        const length = buffers.reduce((n, b) => n + b.length, 0);
        await this.settleRange(position, position + length);
        await writeFully(this.handle, buffers, position);
        this.proven = true;
      } else {
        await this.writeThroughBounces(buffers, position);
      }
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL' || this.proven) throw error;
      this.refused = true;
      return false;
    }
  }

  private async writeThroughBounces(buffers: readonly Uint8Array[], position: number): Promise<void> {
    let bounce = await this.freeBounce();
    let filled = 0;
    let at = position;
    const send = async () => {
      await this.start(bounce, filled, at);
      at += filled;
      filled = 0;
    };
    for (const buffer of buffers) {
      for (let from = 0; from < buffer.length; ) {
        if (filled === bounce.length) {
          await send();
          bounce = await this.freeBounce();
        }
        const take = Math.min(buffer.length - from, bounce.length - filled);
        bounce.set(buffer.subarray(from, from + take), filled);
        filled += take;
        from += take;
      }
    }
    if (filled > 0) await send();
    else this.bounces.release(bounce);
  }

  /** A bounce buffer not being written: a new one while fewer than {@link BOUNCES_IN_FLIGHT} are, else the oldest's once written. */
  private async freeBounce(): Promise<Buffer> {
    if (this.inFlight.length >= BOUNCES_IN_FLIGHT) await (this.inFlight[0] as WriteInFlight).done.catch(() => undefined);
    this.throwFailure();
    return this.bounces.acquire();
  }

  /** Starts writing `length` bytes of `bounce` at `position`; the first direct write of all is awaited (is O_DIRECT taken at all?). */
  private async start(bounce: Buffer, length: number, position: number): Promise<void> {
    await this.settleRange(position, position + length);
    const written = writeFully(this.handle, [bounce.subarray(0, length)], position);
    if (!this.proven) {
      try {
        await written;
      } finally {
        this.bounces.release(bounce);
      }
      this.proven = true;
      return;
    }
    const write: WriteInFlight = {
      start: position,
      end: position + length,
      buffer: bounce,
      done: written.then(
        () => this.settle(write),
        (error: unknown) => {
          this.failure ??= { error };
          this.settle(write);
          throw error;
        },
      ),
    };
    write.done.catch(() => undefined); // kept in `failure`, thrown by the next call
    this.inFlight.push(write);
  }

  private settle(write: WriteInFlight): void {
    this.inFlight.splice(this.inFlight.indexOf(write), 1);
    this.bounces.release(write.buffer);
  }


  /** Waits for every write in flight (before the file is cut or extended). @throws a failure of one. */
  async drain(): Promise<void> {
    await Promise.all(this.inFlight.map((write) => write.done.catch(() => undefined)));
    this.throwFailure();
  }

  /**
   * Waits for the writes in flight that cover any of the bytes [start, end) (a new direct write
   * of them, or a caller about to write some through the page cache, which would read a partial
   * page from the device first). @throws a failure of a write in the background.
   */
  async settleRange(start: number, end: number): Promise<void> {
    const overlapping = this.inFlight.filter((write) => write.start < end && start < write.end);
    await Promise.all(overlapping.map((write) => write.done.catch(() => undefined)));
    this.throwFailure();
  }

  private throwFailure(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }

  /** Waits for every write in flight; @throws the first that failed (the file is closed either way; a second call does nothing). */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.drain();
    } finally {
      this.closed = true;
      await this.handle.close();
    }
  }
}
