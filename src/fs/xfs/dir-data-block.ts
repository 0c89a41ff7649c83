import { fsCorrupt } from '../fs-errors.js';
import { xfsCrcMatches } from './crc32c.js';
import type { RawDirEntry } from './dir-shortform.js';

/**
 * A directory data block (v5, struct xfs_dir3_data_hdr), `dirblocksize` bytes, in the
 * directory's first 32 GiB of logical space:
 * | offset | size | field    | meaning                                                    |
 * |-------:|-----:|----------|------------------------------------------------------------|
 * |      0 |    4 | magic    | `XDB3` (0x58444233): the single block of a block directory;|
 * |        |      |          | `XDD3` (0x58444433): a data block of a leaf/node directory |
 * |      4 |    4 | crc      | CRC-32C of the block (little-endian)                       |
 * |      8 |    8 | blkno    | address in 512-byte sectors                                |
 * |     16 |    8 | lsn      |                                                            |
 * |     24 |   16 | uuid     |                                                            |
 * |     40 |    8 | owner    | the directory's inode number                               |
 * |     48 |   12 | bestfree | three (u16 offset, u16 length) of the largest free spaces  |
 * |     60 |    4 | pad      |                                                            |
 * Entries from byte 64, each 8-byte aligned: u64 inode number, u8 namelen, name, u8 file
 * type (ftype filesystems), u16 tag (the entry's own offset). A free space instead starts
 * with u16 0xffff, u16 length. A block directory ends with its hash index: `count` leaf
 * entries (u32 hash, u32 address) then a tail of u32 count, u32 stale; entries stop there.
 */
export const DATA_HEADER_BYTES = 64;
export const DIR_BLOCK_MAGIC = 0x58444233;
export const DIR_DATA_MAGIC = 0x58444433;
const FREE_TAG = 0xffff;

/** One entry of a data block, with its byte offset inside the block. */
export interface DataBlockEntry extends RawDirEntry {
  offset: number;
}

/**
 * The entries of one directory data block (`.` and `..` included), checked: magic, CRC,
 * owner, entries inside the block and 8-byte aligned. `E_FS_CORRUPT` names the block.
 */
export function parseDataBlock(block: Uint8Array, owner: bigint, hasFtype: boolean, what: string): DataBlockEntry[] {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const magic = view.getUint32(0);
  if (magic !== DIR_BLOCK_MAGIC && magic !== DIR_DATA_MAGIC) throw fsCorrupt('xfs', `${what}: bad magic 0x${magic.toString(16)}`);
  if (!xfsCrcMatches(block, 4)) throw fsCorrupt('xfs', `${what}: checksum mismatch`);
  if (view.getBigUint64(40) !== owner) throw fsCorrupt('xfs', `${what}: belongs to inode ${view.getBigUint64(40)}`);
  let end = block.length;
  if (magic === DIR_BLOCK_MAGIC) {
    const count = view.getUint32(block.length - 8);
    end = block.length - 8 - count * 8;
    if (count > block.length / 8 || end < DATA_HEADER_BYTES) throw fsCorrupt('xfs', `${what}: block tail claims ${count} hash entries`);
  }
  const out: DataBlockEntry[] = [];
  let at = DATA_HEADER_BYTES;
  while (at < end) {
    if (at + 4 > end) throw fsCorrupt('xfs', `${what}: entry at ${at} crosses the end of the data`);
    if (view.getUint16(at) === FREE_TAG) {
      const length = view.getUint16(at + 2);
      if (length < 8 || length % 8 !== 0 || at + length > end) throw fsCorrupt('xfs', `${what}: free space of ${length} bytes at ${at}`);
      at += length;
      continue;
    }
    if (at + 12 > end) throw fsCorrupt('xfs', `${what}: entry at ${at} crosses the end of the data`);
    const namelen = view.getUint8(at + 8);
    const length = Math.ceil((8 + 1 + namelen + (hasFtype ? 1 : 0) + 2) / 8) * 8;
    if (namelen === 0 || at + length > end) throw fsCorrupt('xfs', `${what}: entry at ${at} is damaged`);
    if (view.getUint16(at + length - 2) !== at) throw fsCorrupt('xfs', `${what}: entry at ${at} has a wrong tag`);
    out.push({ name: block.subarray(at + 9, at + 9 + namelen), ino: view.getBigUint64(at), offset: at });
    at += length;
  }
  return out;
}
