import { fsCorrupt, fsUnsupported } from '../fs-errors.js';
import { xfsCrcMatches } from './crc32c.js';
import { ForkFormat, type XfsInode } from './inode.js';
import type { MetadataReader } from './metadata-reader.js';

/**
 * A fork's block map: where each range of a file's (or directory's) logical blocks lies,
 * or of an attribute fork's blocks (attr-fork.ts), in two on-disk shapes.
 *
 * Extent record (struct xfs_bmbt_rec), 16 bytes, two big-endian u64 `l0`, `l1`:
 * | bits of l0:l1 | field      | meaning                                               |
 * |---------------|------------|-------------------------------------------------------|
 * | 127           | state      | 1: unwritten (preallocated, reads as zeros)           |
 * | 126..73       | startoff   | first logical block (54 bits)                         |
 * | 72..21        | startblock | first filesystem block number (52 bits)               |
 * | 20..0         | blockcount | blocks (21 bits)                                      |
 *
 * Extents format: `nextents` records packed at the start of the fork.
 * Btree format: the fork holds the root (struct xfs_bmdr_block): u16 level, u16
 * numrecs, then `maxrecs = (forkbytes - 4) / 16` u64 keys (startoff) and, at
 * `4 + maxrecs * 8`, as many u64 child block numbers. Each child is a block with a long
 * B+tree header (v5, struct xfs_btree_block, 72 bytes):
 * | offset | size | field    | meaning                                              |
 * |-------:|-----:|----------|------------------------------------------------------|
 * |      0 |    4 | magic    | `BMA3` (0x424d4133)                                  |
 * |      4 |    2 | level    | 0 for leaves                                         |
 * |      6 |    2 | numrecs  | records (leaves) or keys/pointers (interior)         |
 * |      8 |    8 | leftsib  | sibling block numbers (all ones: none)               |
 * |     16 |    8 | rightsib |                                                      |
 * |     24 |    8 | blkno    | this block's address in 512-byte sectors             |
 * |     32 |    8 | lsn      |                                                      |
 * |     40 |   16 | uuid     | the filesystem's (meta) UUID                         |
 * |     56 |    8 | owner    | the inode number                                     |
 * |     64 |    4 | crc      | CRC-32C of the block (little-endian)                 |
 * A leaf holds extent records from byte 72; an interior block holds `maxrecs =
 * (blocksize - 72) / 16` keys from byte 72 and the pointers at `72 + maxrecs * 8`.
 */
export interface MappedExtent {
  /** First logical block. */
  fileBlock: number;
  /** Linear block (agno * agblocks + agbno) on the device, checked to lie in the filesystem. */
  diskBlock: number;
  blocks: number;
  unwritten: boolean;
}

const BMAP_CRC_MAGIC = 0x424d4133;
const BTREE_HEADER_BYTES = 72;
const ROOT_HEADER_BYTES = 4;
/** Extents Coffer holds for one fork (about 100 MiB of memory at most). */
export const MAX_EXTENTS = 1 << 21;
const MAX_LEVELS = 9;

/** Decodes `count` packed extent records of `bytes` (checked against the filesystem). */
export function decodeExtents(bytes: Uint8Array, count: number, reader: MetadataReader, what: string): MappedExtent[] {
  if (count * 16 > bytes.length) throw fsCorrupt('xfs', `${what}: ${count} extents do not fit in ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: MappedExtent[] = [];
  for (let i = 0; i < count; i++) {
    const l0 = view.getBigUint64(i * 16);
    const l1 = view.getBigUint64(i * 16 + 8);
    const blocks = Number(l1 & 0x1fffffn);
    const fileBlock = Number((l0 & 0x7fffffffffffffffn) >> 9n);
    const startBlock = ((l0 & 0x1ffn) << 43n) | (l1 >> 21n);
    if (blocks === 0) throw fsCorrupt('xfs', `${what}: empty extent`);
    out.push({ fileBlock, diskBlock: reader.linearBlock(startBlock, blocks, what), blocks, unwritten: l0 >> 63n === 1n });
  }
  return out;
}

/**
 * The extents of an inode's data fork, in logical order, checked not to overlap. Reads the
 * B+tree blocks of a btree-format fork (each checked: magic, level, owner, CRC; never
 * visited twice). `E_FS_UNSUPPORTED` beyond {@link MAX_EXTENTS}.
 */
export async function readExtentMap(inode: XfsInode, reader: MetadataReader): Promise<MappedExtent[]> {
  return readForkExtentMap({ format: inode.format, nextents: inode.nextents, bytes: inode.dataFork }, inode.ino, reader, `inode ${inode.ino}`);
}

/** A fork of an inode as its block map reader needs it: format, extent count and the fork's bytes in the inode. */
export interface ForkBytes {
  format: number;
  nextents: number;
  bytes: Uint8Array;
}

/**
 * The extents of one fork (data or attribute) of inode `ino`, as {@link readExtentMap}
 * says; `what` names the fork in errors.
 */
export async function readForkExtentMap(fork: ForkBytes, ino: bigint, reader: MetadataReader, what: string): Promise<MappedExtent[]> {
  if (fork.nextents > MAX_EXTENTS) throw fsUnsupported('xfs', `${what}: ${fork.nextents} extents are more than Coffer maps (${MAX_EXTENTS})`);
  let extents: MappedExtent[];
  if (fork.format === ForkFormat.Extents) {
    extents = decodeExtents(fork.bytes, fork.nextents, reader, what);
  } else if (fork.format === ForkFormat.Btree) {
    extents = await readBtree(fork.bytes, ino, reader, what);
  } else {
    throw fsCorrupt('xfs', `${what}: fork format ${fork.format} has no block map`);
  }
  let end = 0;
  for (const e of extents) {
    if (e.fileBlock < end) throw fsCorrupt('xfs', `${what}: extents overlap or are out of order at block ${e.fileBlock}`);
    end = e.fileBlock + e.blocks;
  }
  return extents;
}

async function readBtree(fork: Uint8Array, ino: bigint, reader: MetadataReader, what: string): Promise<MappedExtent[]> {
  const view = new DataView(fork.buffer, fork.byteOffset, fork.byteLength);
  const level = view.getUint16(0);
  const numrecs = view.getUint16(2);
  const rootMax = Math.floor((fork.length - ROOT_HEADER_BYTES) / 16);
  if (level < 1 || level > MAX_LEVELS || numrecs < 1 || numrecs > rootMax) throw fsCorrupt('xfs', `${what}: bad B+tree root (level ${level}, ${numrecs} records)`);
  const pointers: bigint[] = [];
  for (let i = 0; i < numrecs; i++) pointers.push(view.getBigUint64(ROOT_HEADER_BYTES + rootMax * 8 + i * 8));
  const out: MappedExtent[] = [];
  const visited = new Set<number>();
  const walk = async (pointer: bigint, expectedLevel: number): Promise<void> => {
    const linear = reader.linearBlock(pointer, 1, `${what} B+tree`);
    if (visited.has(linear)) throw fsCorrupt('xfs', `${what}: B+tree block ${pointer} is reached twice`);
    visited.add(linear);
    const block = await reader.readLinear(linear, 1);
    const b = new DataView(block.buffer, block.byteOffset, block.byteLength);
    if (b.getUint32(0) !== BMAP_CRC_MAGIC) throw fsCorrupt('xfs', `${what}: B+tree block ${pointer} has a bad magic`);
    if (!xfsCrcMatches(block, 64)) throw fsCorrupt('xfs', `${what}: B+tree block ${pointer} checksum mismatch`);
    if (b.getBigUint64(56) !== ino) throw fsCorrupt('xfs', `${what}: B+tree block ${pointer} belongs to inode ${b.getBigUint64(56)}`);
    const blockLevel = b.getUint16(4);
    const count = b.getUint16(6);
    if (blockLevel !== expectedLevel) throw fsCorrupt('xfs', `${what}: B+tree block ${pointer} is at level ${blockLevel}, expected ${expectedLevel}`);
    const maxrecs = Math.floor((block.length - BTREE_HEADER_BYTES) / 16);
    if (count < 1 || count > maxrecs) throw fsCorrupt('xfs', `${what}: B+tree block ${pointer} claims ${count} records`);
    if (blockLevel === 0) {
      if (out.length + count > MAX_EXTENTS) throw fsUnsupported('xfs', `${what}: more than ${MAX_EXTENTS} extents`);
      out.push(...decodeExtents(block.subarray(BTREE_HEADER_BYTES), count, reader, what));
      return;
    }
    for (let i = 0; i < count; i++) await walk(b.getBigUint64(BTREE_HEADER_BYTES + maxrecs * 8 + i * 8), blockLevel - 1);
  };
  for (const pointer of pointers) await walk(pointer, level - 1);
  return out;
}

/** The extent holding logical block `fileBlock` (binary search), or undefined for a hole. */
export function findExtent(extents: readonly MappedExtent[], fileBlock: number): MappedExtent | undefined {
  let lo = 0;
  let hi = extents.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = extents[mid] as MappedExtent;
    if (fileBlock < e.fileBlock) hi = mid - 1;
    else if (fileBlock >= e.fileBlock + e.blocks) lo = mid + 1;
    else return e;
  }
  return undefined;
}

/** The index of the first extent ending after logical block `fileBlock` (`extents.length` if none). */
export function firstExtentEndingAfter(extents: readonly MappedExtent[], fileBlock: number): number {
  let lo = 0;
  let hi = extents.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const e = extents[mid] as MappedExtent;
    if (e.fileBlock + e.blocks <= fileBlock) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
