import type { FsNodeType } from '../filesystem.js';
import { fsCorrupt } from '../fs-errors.js';
import { RO_COMPAT, type Superblock } from './superblock.js';

/**
 * An inode record (s_inode_size bytes in its group's inode table), little-endian:
 *
 * | off  | size | field           | meaning                                                  |
 * | 0x00 | 2    | i_mode          | type (mode & 0xF000) and permissions                     |
 * | 0x02 | 2    | i_uid           | owner, low 16 bits                                       |
 * | 0x04 | 4    | i_size_lo       | size in bytes, low 32 bits                               |
 * | 0x08 | 4    | i_atime         | seconds since 1970, signed                               |
 * | 0x0C | 4    | i_ctime         |                                                          |
 * | 0x10 | 4    | i_mtime         |                                                          |
 * | 0x18 | 2    | i_gid           | group, low 16 bits                                       |
 * | 0x1A | 2    | i_links_count   |                                                          |
 * | 0x1C | 4    | i_blocks_lo     | blocks used, 512-byte units (fs blocks with HUGE_FILE_FL)|
 * | 0x20 | 4    | i_flags         | see FLAGS                                                |
 * | 0x28 | 60   | i_block[15]     | block map, extent tree root, inline data or fast symlink |
 * | 0x68 | 4    | i_file_acl_lo   | extended attribute block                                 |
 * | 0x6C | 4    | i_size_high     | size, high 32 bits                                       |
 * | 0x74 | 2    | l_i_blocks_high | i_blocks, high 16 bits (huge_file)                       |
 * | 0x76 | 2    | l_i_file_acl_high |                                                        |
 * | 0x78 | 2    | l_i_uid_high    | owner, high 16 bits                                      |
 * | 0x7A | 2    | l_i_gid_high    | group, high 16 bits                                      |
 * | 0x80 | 2    | i_extra_isize   | bytes used past 128 (the fields below exist only if covered) |
 * | 0x84 | 4    | i_ctime_extra   | bits 0-1: seconds bits 32-33 (epoch), bits 2-31: nanoseconds |
 * | 0x88 | 4    | i_mtime_extra   |                                                          |
 * | 0x8C | 4    | i_atime_extra   |                                                          |
 * | 0x90 | 4    | i_crtime        | creation time, seconds                                   |
 * | 0x94 | 4    | i_crtime_extra  |                                                          |
 *
 * In-inode extended attributes start at 128 + i_extra_isize (see xattr-entries.ts).
 */
export const INODE_BASE_SIZE = 128;
export const I_BLOCK_OFFSET = 0x28;
export const I_BLOCK_SIZE = 60;

/** i_flags bits Coffer looks at. */
export const FLAGS = {
  ENCRYPT: 0x800, INDEX: 0x1000, HUGE_FILE: 0x40000, EXTENTS: 0x80000, EA_INODE: 0x200000, INLINE_DATA: 0x10000000, CASEFOLD: 0x40000000,
} as const;

/** The root directory's inode number. */
export const ROOT_INODE = 2;

/** One parsed inode. `raw` is a private copy of its record (i_block, in-inode xattrs). */
export interface ExtInode {
  readonly number: number;
  readonly mode: number;
  readonly type: FsNodeType;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly linksCount: number;
  readonly flags: number;
  /** Blocks used, in bytes (i_blocks with the huge_file semantics applied). */
  readonly allocatedBytes: number;
  readonly fileAcl: number;
  readonly atimeMs: number;
  readonly ctimeMs: number;
  readonly mtimeMs: number;
  readonly birthtimeMs: number;
  /** Bytes of the record actually used: 128 + i_extra_isize (128 for 128-byte inodes). */
  readonly usedSize: number;
  readonly raw: Uint8Array;
}

const TYPES: Record<number, FsNodeType> = {
  0x1000: 'fifo', 0x2000: 'char-device', 0x4000: 'directory', 0x6000: 'block-device', 0x8000: 'file', 0xa000: 'symlink', 0xc000: 'socket',
};

/**
 * Parses inode `number` from its record. Throws `E_FS_CORRUPT` for a free inode (mode 0)
 * or impossible sizes.
 */
export function parseInode(sb: Superblock, number: number, record: Uint8Array): ExtInode {
  const raw = Uint8Array.from(record.subarray(0, sb.inodeSize));
  const view = new DataView(raw.buffer);
  const u16 = (o: number): number => view.getUint16(o, true);
  const u32 = (o: number): number => view.getUint32(o, true);
  const mode = u16(0x00);
  if (mode === 0) throw fsCorrupt('ext', `inode ${number} is not in use`, { object: `inode ${number}` });
  const sizeHigh = u32(0x6c);
  if (sizeHigh >= 2 ** 21) throw fsCorrupt('ext', `inode ${number}: size beyond 2^53 bytes`, { object: `inode ${number}` });
  const extra = sb.inodeSize > INODE_BASE_SIZE ? u16(0x80) : 0;
  if (INODE_BASE_SIZE + extra > sb.inodeSize || extra % 4 !== 0) {
    throw fsCorrupt('ext', `inode ${number}: extra size ${extra} does not fit a ${sb.inodeSize}-byte inode`, { object: `inode ${number}` });
  }
  const usedSize = INODE_BASE_SIZE + extra;
  const has = (offset: number): boolean => offset + 4 <= usedSize;
  const time = (base: number, extraOffset: number): number => {
    let seconds = view.getInt32(base, true);
    let nanos = 0;
    if (has(extraOffset)) {
      const e = u32(extraOffset);
      seconds += (e & 3) * 2 ** 32;
      nanos = e >>> 2;
    }
    return seconds * 1000 + Math.floor(nanos / 1e6);
  };
  const flags = u32(0x20);
  const hugeFile = (sb.featureRoCompat & RO_COMPAT.HUGE_FILE) !== 0;
  const blocks = u32(0x1c) + (hugeFile ? u16(0x74) * 2 ** 32 : 0);
  return {
    number,
    mode,
    type: TYPES[mode & 0xf000] ?? 'unknown',
    uid: u16(0x02) + u16(0x78) * 65536,
    gid: u16(0x18) + u16(0x7a) * 65536,
    size: u32(0x04) + sizeHigh * 2 ** 32,
    linksCount: u16(0x1a),
    flags,
    allocatedBytes: blocks * (hugeFile && (flags & FLAGS.HUGE_FILE) !== 0 ? sb.blockSize : 512),
    fileAcl: u32(0x68) + u16(0x76) * 2 ** 32,
    atimeMs: time(0x08, 0x8c),
    ctimeMs: time(0x0c, 0x84),
    mtimeMs: time(0x10, 0x88),
    birthtimeMs: has(0x90) ? time(0x90, 0x94) : NaN,
    usedSize,
    raw,
  };
}

/** The 60 bytes of i_block. */
export function iBlock(inode: ExtInode): Uint8Array {
  return inode.raw.subarray(I_BLOCK_OFFSET, I_BLOCK_OFFSET + I_BLOCK_SIZE);
}

/** Device numbers of a char/block device inode (old 16-bit encoding in i_block[0], new in i_block[1]). */
export function deviceNumbers(inode: ExtInode): { major: number; minor: number } {
  const view = new DataView(inode.raw.buffer, I_BLOCK_OFFSET, 8);
  const old = view.getUint32(0, true);
  if (old !== 0) return { major: (old >>> 8) & 0xff, minor: old & 0xff };
  const dev = view.getUint32(4, true);
  return { major: (dev >>> 8) & 0xfff, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}
