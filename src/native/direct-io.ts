import { stat, statfs } from 'node:fs/promises';
import { syscalls } from './syscalls.js';
import { sharedMemory } from './huge-pages.js';

/**
 * What writes past the page cache (O_DIRECT) need, shared by the restore's raw targets
 * (disk/direct-writes.ts) and the local repository's pack files (repo/backend/local-backend.ts).
 *
 * O_DIRECT asks that the file offset, the length and the memory address of every write be
 * aligned to the device's logical block size: {@link DIRECT_ALIGNMENT} covers 512 and 4096.
 * JavaScript cannot see addresses, so memory is placed with the native `alignmentGap`.
 *
 * Only block devices and files on the local disk filesystems (ext4, XFS, btrfs) are written
 * so: on a network filesystem (NFS, SMB) O_DIRECT turns each write into a synchronous round
 * trip to the server with no write-behind; on a filesystem in memory (tmpfs, ramfs) the page
 * cache is the storage, so it saves nothing; FUSE and overlay filesystems vary.
 */
export const DIRECT_ALIGNMENT = 4096;

/** statfs(2) f_type of the filesystems whose files are written direct: local disk filesystems with mature O_DIRECT. */
const DIRECT_FILESYSTEMS = new Set([0xef53 /* ext2/3/4 */, 0x58465342 /* XFS */, 0x9123683e /* btrfs */]);

/** Whether `path` is written direct: a block device, or a file (or folder) on ext4, XFS or btrfs. */
export async function takesDirectWrites(path: string | Buffer): Promise<boolean> {
  // (For a device, statfs would name the filesystem holding its node: /dev, a tmpfs.)
  const kind = await stat(path);
  return kind.isBlockDevice() || ((kind.isFile() || kind.isDirectory()) && DIRECT_FILESYSTEMS.has((await statfs(path)).type));
}

/** Whether `view` starts on a {@link DIRECT_ALIGNMENT} boundary in memory. */
export function isAlignedInMemory(view: ArrayBufferView): boolean {
  return syscalls.alignmentGap(view, DIRECT_ALIGNMENT) === 0;
}

/**
 * `bytes` of zeroed shared memory (workers read it without a copy) whose first byte is on a
 * {@link DIRECT_ALIGNMENT} boundary, with room in its buffer to write any start of it as
 * whole sectors (its length rounded up).
 */
export function alignedSharedBuffer(bytes: number): Buffer {
  return alignedIn(Buffer.from(sharedMemory(Math.ceil(bytes / DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT + DIRECT_ALIGNMENT)), bytes);
}

/** The first `bytes` of `space` (at least `bytes` + {@link DIRECT_ALIGNMENT} long) from its first aligned address. */
function alignedIn(space: Buffer, bytes: number): Buffer {
  const gap = syscalls.alignmentGap(space, DIRECT_ALIGNMENT);
  return space.subarray(gap, gap + bytes);
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
    return alignedIn(Buffer.allocUnsafeSlow(this.bytes + DIRECT_ALIGNMENT), this.bytes);
  }

  release(buffer: Buffer): void {
    this.free.push(buffer);
  }
}
