import type { BlockDevice } from '../../blockdev/index.js';
import { fsCorrupt } from '../fs-errors.js';
import type { XfsSuperblock } from './superblock.js';

/** Metadata is read and cached in aligned pieces of this many bytes (or one block, if larger). */
const PIECE_BYTES = 16 * 1024;
/** Bytes of metadata kept in the cache (least recently used pieces are dropped). */
const CACHE_BYTES = 8 * 1024 * 1024;

/**
 * Reads filesystem blocks and inodes of one XFS filesystem, checking that every address
 * lies inside its allocation group and the filesystem, through a bounded LRU cache of
 * aligned pieces (directories, B+tree blocks and inode clusters are read again and again).
 */
export class MetadataReader {
  private readonly pieceBytes: number;
  private readonly capacity: number;
  private readonly cache = new Map<number, Promise<Uint8Array>>();

  constructor(
    readonly device: BlockDevice,
    readonly sb: XfsSuperblock,
  ) {
    this.pieceBytes = Math.max(PIECE_BYTES, sb.blockSize);
    this.capacity = Math.max(4, Math.floor(CACHE_BYTES / this.pieceBytes));
  }

  /** Bytes the filesystem spans. */
  get fsBytes(): number {
    return this.sb.dataBlocks * this.sb.blockSize;
  }

  /**
   * The linear block index (`agno * agblocks + agbno`) of the `count` blocks starting at
   * filesystem block number `fsbno`; throws `E_FS_CORRUPT` naming `what` when they leave
   * their allocation group or the filesystem.
   */
  linearBlock(fsbno: bigint, count: number, what: string): number {
    const agno = Number(fsbno >> BigInt(this.sb.agBlockLog));
    const agbno = Number(fsbno & ((1n << BigInt(this.sb.agBlockLog)) - 1n));
    if (agno >= this.sb.agCount || agbno + count > this.sb.agBlocks) throw fsCorrupt('xfs', `${what}: block ${fsbno} (group ${agno}, block ${agbno}, ${count} long) is outside the filesystem`);
    const linear = agno * this.sb.agBlocks + agbno;
    if (linear + count > this.sb.dataBlocks) throw fsCorrupt('xfs', `${what}: block ${fsbno} is beyond the end of the filesystem`);
    return linear;
  }

  /** `count` blocks from linear block `linear` (checked by the caller with {@link linearBlock}), cached. */
  async readLinear(linear: number, count: number): Promise<Uint8Array> {
    return this.readBytes(linear * this.sb.blockSize, count * this.sb.blockSize);
  }

  /** The `inodeSize` bytes of inode `ino`; `E_FS_CORRUPT` when the number points outside the filesystem. */
  async readInodeBytes(ino: bigint): Promise<Uint8Array> {
    return this.readBytes(this.inodeOffset(ino), this.sb.inodeSize);
  }

  /** The device byte offset of inode `ino` (`inodeSize` bytes); `E_FS_CORRUPT` when it points outside the filesystem. */
  inodeOffset(ino: bigint): number {
    const sb = this.sb;
    const fsbno = ino >> BigInt(sb.inodesPerBlockLog);
    const index = Number(ino & ((1n << BigInt(sb.inodesPerBlockLog)) - 1n));
    if (ino >> BigInt(sb.agBlockLog + sb.inodesPerBlockLog) >= BigInt(sb.agCount)) throw fsCorrupt('xfs', `inode ${ino} is in no allocation group`);
    const linear = this.linearBlock(fsbno, 1, `inode ${ino}`);
    return linear * sb.blockSize + index * sb.inodeSize;
  }

  private async readBytes(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const position = offset + done;
      const start = position - (position % this.pieceBytes);
      const piece = await this.piece(start);
      const from = position - start;
      const n = Math.min(length - done, piece.length - from);
      if (n <= 0) throw fsCorrupt('xfs', `read at ${position} beyond the device`);
      out.set(piece.subarray(from, from + n), done);
      done += n;
    }
    return out;
  }

  private piece(start: number): Promise<Uint8Array> {
    const cached = this.cache.get(start);
    if (cached !== undefined) {
      this.cache.delete(start);
      this.cache.set(start, cached);
      return cached;
    }
    const end = Math.min(start + this.pieceBytes, this.fsBytes, this.device.size);
    const pending = end > start ? this.device.read(start, end - start) : Promise.resolve(new Uint8Array(0));
    pending.catch(() => this.cache.delete(start));
    this.cache.set(start, pending);
    if (this.cache.size > this.capacity) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    return pending;
  }
}
