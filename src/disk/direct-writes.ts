import { constants } from 'node:fs';
import { open, stat, statfs, type FileHandle } from 'node:fs/promises';
import { syscalls } from '../native/index.js';
import { writeFully } from './write-fully.js';

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
 * same bytes. Node's buffers are not aligned in memory, so data is copied into an aligned
 * bounce buffer of {@link BOUNCE_BYTES} on the way (a memcpy: the kernel's own copy into the
 * page cache is what it replaces); a run whose buffers are all aligned already is written
 * from them directly.
 *
 * Only block devices and files on the local disk filesystems ({@link DIRECT_FILESYSTEMS}: ext4,
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
export const DIRECT_ALIGNMENT = 4096;

/** statfs(2) f_type of the filesystems whose files are written direct: local disk filesystems with mature O_DIRECT. */
const DIRECT_FILESYSTEMS = new Set([0xef53 /* ext2/3/4 */, 0x58465342 /* XFS */, 0x9123683e /* btrfs */]);

/** The bounce buffer: 4 MiB, 16 aligned writes per 64 MiB (a restore's runs are up to 16 MiB). */
const BOUNCE_BYTES = 4 * 1024 * 1024;

/** Whether `path` is written direct: a block device, or a file (or folder) on one of {@link DIRECT_FILESYSTEMS}. */
export async function takesDirectWrites(path: string): Promise<boolean> {
  // (For a device, statfs would name the filesystem holding its node: /dev, a tmpfs.)
  const kind = await stat(path);
  return kind.isBlockDevice() || ((kind.isFile() || kind.isDirectory()) && DIRECT_FILESYSTEMS.has((await statfs(path)).type));
}

/**
 * A free list of equal buffers that start on a {@link DIRECT_ALIGNMENT} boundary in memory
 * (Node's allocations do not): taken and given back as writes need them, so each is allocated
 * (and its pages faulted in) once.
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

export class DirectWriter {
  /** The bounce buffer, allocated at the first write that needs it. */
  private bounce: Buffer | undefined;
  /** The filesystem refused a direct write (EINVAL): every write goes buffered from then on. */
  private refused = false;

  private constructor(private readonly handle: FileHandle) {}

  /** Opens `path` (which exists) for direct writes: a block device, or a file on one of {@link DIRECT_FILESYSTEMS}; otherwise (or where O_DIRECT is refused) undefined. */
  static async open(path: string): Promise<DirectWriter | undefined> {
    try {
      if (!(await takesDirectWrites(path))) return undefined;
      return new DirectWriter(await open(path, constants.O_WRONLY | constants.O_DIRECT));
    } catch {
      return undefined;
    }
  }

  /** Whether a write at `offset` of `length` bytes can go direct. */
  accepts(offset: number, length: number): boolean {
    return !this.refused && offset % DIRECT_ALIGNMENT === 0 && length % DIRECT_ALIGNMENT === 0 && length > 0;
  }

  /**
   * Writes `buffers` back to back at `position` (aligned, see {@link accepts}). Returns false,
   * having written nothing that counts, when the filesystem refuses direct writes: the caller
   * writes them buffered. @throws the write's error otherwise (ENOSPC…).
   */
  async write(buffers: readonly Uint8Array[], position: number): Promise<boolean> {
    try {
      if (buffers.every((b) => b.length % DIRECT_ALIGNMENT === 0 && syscalls.alignmentGap(b, DIRECT_ALIGNMENT) === 0)) await writeFully(this.handle, buffers, position);
      else await this.writeThroughBounce(buffers, position);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
      this.refused = true;
      return false;
    }
  }

  private async writeThroughBounce(buffers: readonly Uint8Array[], position: number): Promise<void> {
    const bounce = (this.bounce ??= new AlignedBuffers(BOUNCE_BYTES).acquire());
    let filled = 0;
    let at = position;
    const flush = async () => {
      await writeFully(this.handle, [bounce.subarray(0, filled)], at);
      at += filled;
      filled = 0;
    };
    for (const buffer of buffers) {
      for (let from = 0; from < buffer.length; ) {
        const take = Math.min(buffer.length - from, bounce.length - filled);
        bounce.set(buffer.subarray(from, from + take), filled);
        filled += take;
        from += take;
        if (filled === bounce.length) await flush();
      }
    }
    if (filled > 0) await flush();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
