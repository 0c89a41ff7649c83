import { fsCorrupt } from '../fs-errors.js';
import { xfsCrcMatches } from './crc32c.js';
import { findExtent, type MappedExtent } from './extent-map.js';
import { ForkFormat, type XfsInode } from './inode.js';
import type { MetadataReader } from './metadata-reader.js';

/**
 * Symlink targets: inline in the data fork (local format) when they fit, otherwise in
 * "remote" blocks, each starting with a v5 header (struct xfs_dsymlink_hdr):
 * | offset | size | field  | meaning                                          |
 * |-------:|-----:|--------|--------------------------------------------------|
 * |      0 |    4 | magic  | `XSLM` (0x58534c4d)                              |
 * |      4 |    4 | offset | byte of the target this block starts at          |
 * |      8 |    4 | bytes  | bytes of the target in this block                |
 * |     12 |    4 | crc    | CRC-32C of the block (little-endian)             |
 * |     16 |   16 | uuid   |                                                  |
 * |     32 |    8 | owner  | the symlink's inode number                       |
 * |     40 |    8 | blkno  | address in 512-byte sectors                      |
 * |     48 |    8 | lsn    |                                                  |
 * The target follows from byte 56. Targets are at most 1024 bytes (XFS_SYMLINK_MAXLEN).
 */
const SYMLINK_MAGIC = 0x58534c4d;
const HEADER_BYTES = 56;
export const MAX_TARGET_BYTES = 1024;

/** The bytes of a symlink's target. */
export async function readSymlinkTarget(inode: XfsInode, extents: () => Promise<MappedExtent[]>, reader: MetadataReader): Promise<Uint8Array> {
  const what = `symlink ${inode.ino}`;
  if (inode.size < 1 || inode.size > MAX_TARGET_BYTES) throw fsCorrupt('xfs', `${what}: target of ${inode.size} bytes`);
  if (inode.format === ForkFormat.Local) {
    if (inode.size > inode.dataFork.length) throw fsCorrupt('xfs', `${what}: inline target longer than the inode`);
    return inode.dataFork.slice(0, inode.size);
  }
  const map = await extents();
  const per = reader.sb.blockSize - HEADER_BYTES;
  const out = new Uint8Array(inode.size);
  for (let done = 0, block = 0; done < inode.size; block++) {
    const e = findExtent(map, block);
    if (e === undefined) throw fsCorrupt('xfs', `${what}: block ${block} of the target is not mapped`);
    const bytes = await reader.readLinear(e.diskBlock + (block - e.fileBlock), 1);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0) !== SYMLINK_MAGIC) throw fsCorrupt('xfs', `${what}: bad magic in block ${block}`);
    if (!xfsCrcMatches(bytes, 12)) throw fsCorrupt('xfs', `${what}: checksum mismatch in block ${block}`);
    if (view.getBigUint64(32) !== inode.ino) throw fsCorrupt('xfs', `${what}: block ${block} belongs to inode ${view.getBigUint64(32)}`);
    const n = view.getUint32(8);
    if (view.getUint32(4) !== done || n < 1 || n > per || done + n > inode.size) throw fsCorrupt('xfs', `${what}: block ${block} holds bytes ${view.getUint32(4)}+${n}`);
    out.set(bytes.subarray(HEADER_BYTES, HEADER_BYTES + n), done);
    done += n;
  }
  return out;
}
