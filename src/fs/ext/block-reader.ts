import type { BlockDevice } from '../../blockdev/index.js';
import { fsCorrupt } from '../fs-errors.js';

/** Metadata blocks kept in memory per filesystem: enough for the inode table blocks and
 * index blocks of a few directories being walked, small next to a 256 KiB chunk cache. */
const DEFAULT_CACHE_BYTES = 4 * 1024 * 1024;

/**
 * Reads whole blocks of one filesystem from its device: metadata blocks through a bounded
 * LRU cache (inode tables, extent and indirect blocks, directory blocks, group descriptors),
 * file data uncached. Every block number is checked against the filesystem's and the
 * device's size before any read, so a damaged pointer is an `E_FS_CORRUPT` error, not a
 * read outside the device.
 */
export class BlockReader {
  /** Blocks that exist on both the filesystem and the device. */
  readonly usableBlocks: number;
  private readonly cache = new Map<number, Promise<Uint8Array>>();
  private readonly cacheBlocks: number;

  constructor(
    readonly device: BlockDevice,
    readonly blockSize: number,
    blocksCount: number,
    cacheBytes = DEFAULT_CACHE_BYTES,
  ) {
    this.usableBlocks = Math.min(blocksCount, Math.floor(device.size / blockSize));
    this.cacheBlocks = Math.max(8, Math.floor(cacheBytes / blockSize));
  }

  /** Throws `E_FS_CORRUPT` unless blocks `[block, block + count)` lie inside the filesystem. */
  check(block: number, count: number, what: string): void {
    if (!Number.isSafeInteger(block) || !Number.isSafeInteger(count) || block < 0 || count < 0 || block + count > this.usableBlocks) {
      throw fsCorrupt('ext', `${what}: block ${block}${count > 1 ? ` (+${count})` : ''} is outside the filesystem (${this.usableBlocks} blocks)`);
    }
  }

  /** One metadata block, cached (the returned bytes are shared: do not modify them). */
  block(block: number, what: string): Promise<Uint8Array> {
    this.check(block, 1, what);
    const hit = this.cache.get(block);
    if (hit !== undefined) {
      this.cache.delete(block); // refresh its place in the LRU order
      this.cache.set(block, hit);
      return hit;
    }
    const pending = this.device.read(block * this.blockSize, this.blockSize);
    pending.catch(() => this.cache.delete(block));
    this.cache.set(block, pending);
    if (this.cache.size > this.cacheBlocks) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    return pending;
  }

  /**
   * File data, not cached: `into.length` bytes starting `skip` bytes into the `count`
   * consecutive blocks at `block` (the whole range must lie in those blocks).
   */
  async readInto(block: number, count: number, skip: number, into: Uint8Array, what: string): Promise<void> {
    this.check(block, count, what);
    if (skip < 0 || skip + into.length > count * this.blockSize) throw new RangeError(`${what}: read outside its blocks`);
    const got = await this.device.read(block * this.blockSize + skip, into.length, into);
    if (got.buffer !== into.buffer || got.byteOffset !== into.byteOffset) into.set(got.subarray(0, into.length));
  }
}
