import { crc32cUpdate } from '../crc32c.js';
import { decodeName } from '../../names/index.js';
import { fsCorrupt } from '../fs-errors.js';

/**
 * ext2/3/4 extended attributes, little-endian. An inode's attributes live in two places:
 *
 * In-inode area, from 128 + i_extra_isize to the end of the inode record (inode.ts):
 *
 * | off | size | field    | meaning                                                         |
 * | 0   | 4    | h_magic  | 0xEA020000 (anything else: the inode holds no attributes here)  |
 * | 4   | …    | entries  | value offsets count from here (the first entry)                 |
 *
 * External block, block i_file_acl (one whole block, possibly shared by inodes whose
 * attributes are equal):
 *
 * | off | size | field      | meaning                                                       |
 * | 0   | 4    | h_magic    | 0xEA020000                                                    |
 * | 4   | 4    | h_refcount | inodes sharing the block                                      |
 * | 8   | 4    | h_blocks   | always 1                                                      |
 * | 12  | 4    | h_hash     |                                                               |
 * | 16  | 4    | h_checksum | metadata_csum: CRC-32C register from the filesystem seed over |
 * |     |      |            | the block number (le64), then the block with this field zero  |
 * | 20  | 12   | reserved   |                                                               |
 * | 32  | …    | entries    | value offsets count from the block's first byte               |
 *
 * Entries follow each other, each padded to 4 bytes, until 4 zero bytes (or the area's end):
 *
 * | off | size | field        | meaning                                                     |
 * | 0   | 1    | e_name_len   |                                                             |
 * | 1   | 1    | e_name_index | the name's prefix: see {@link PREFIXES}                     |
 * | 2   | 2    | e_value_offs | where the value starts (see above); 0 with e_value_inum     |
 * | 4   | 4    | e_value_inum | ea_inode: non-zero when the value is the content of that    |
 * |     |      |              | inode (flag EA_INODE_FL), not stored in the area            |
 * | 8   | 4    | e_value_size | bytes of value (at most 64 KiB for Linux)                   |
 * | 12  | 4    | e_hash       |                                                             |
 * | 16  | n    | e_name       | the name after its prefix, e_name_len bytes, any bytes      |
 *
 * Values are stored after the entry table (from the end of the area downwards), each padded
 * to 4 bytes. A value that overlaps the entry table or runs past the area is damage.
 * `system.posix_acl_access`/`_default` values are in ext4's own ACL format (ext-acl.ts).
 */
export const XATTR_MAGIC = 0xea020000;
export const XATTR_BLOCK_HEADER_SIZE = 32;
const BLOCK = { magic: 0, refcount: 4, blocks: 8, hash: 12, checksum: 16 } as const;
const ENTRY_HEADER_SIZE = 16;
const ENTRY = { nameLen: 0, nameIndex: 1, valueOffs: 2, valueInum: 4, valueSize: 8 } as const;

/** The prefix each e_name_index stands for (indexes not listed are internal and not attributes a user sees: 9 is fscrypt's context). */
export const PREFIXES: ReadonlyMap<number, string> = new Map([
  [1, 'user.'],
  [2, 'system.posix_acl_access'],
  [3, 'system.posix_acl_default'],
  [4, 'trusted.'],
  [6, 'security.'],
  [7, 'system.'],
  [8, 'system.richacl'],
]);

/** The largest value Linux's setxattr takes (XATTR_SIZE_MAX); a larger value in another inode is damage. */
export const MAX_XATTR_VALUE = 65536;

/** One entry of an area or block, its value still where it lies. */
export interface RawXattr {
  /** The full name (prefix + e_name decoded by names/byte-names.ts), undefined for an index without a prefix Linux knows. */
  name: string | undefined;
  index: number;
  /** The value's bytes when stored in the area (a view into it). */
  value?: Uint8Array;
  /** ea_inode: the inode holding the value, and its size. */
  valueInode?: { inode: number; size: number };
}

/**
 * The entries of an in-inode area (`area` starts at h_magic and ends with the inode record):
 * [] when h_magic is absent. Throws `E_FS_CORRUPT` naming `where` for an entry or value
 * that does not fit the area.
 */
export function parseInodeXattrs(area: Uint8Array, where: string): RawXattr[] {
  if (area.length < 4 || view(area).getUint32(0, true) !== XATTR_MAGIC) return [];
  return parseEntries(area.subarray(4), 0, `${where}: in-inode extended attributes`);
}

/**
 * The entries of an external attribute block: checks h_magic, h_blocks and (with
 * `checksumSeed`, metadata_csum) h_checksum. Throws `E_FS_CORRUPT` naming `where`.
 */
export function parseXattrBlock(block: Uint8Array, blockNumber: number, where: string, checksumSeed?: number): RawXattr[] {
  const what = `${where}: extended attribute block ${blockNumber}`;
  if (block.length < XATTR_BLOCK_HEADER_SIZE + 4) throw fsCorrupt('ext', `${what} is too small`, { object: where });
  const v = view(block);
  const magic = v.getUint32(BLOCK.magic, true);
  if (magic !== XATTR_MAGIC) throw fsCorrupt('ext', `${what}: bad magic 0x${magic.toString(16)}`, { object: where });
  const blocks = v.getUint32(BLOCK.blocks, true);
  if (blocks !== 1) throw fsCorrupt('ext', `${what}: h_blocks is ${blocks}, not 1`, { object: where });
  if (checksumSeed !== undefined) {
    const expected = xattrBlockChecksum(block, blockNumber, checksumSeed);
    const stored = v.getUint32(BLOCK.checksum, true);
    if (stored !== expected) throw fsCorrupt('ext', `${what}: checksum 0x${stored.toString(16)} should be 0x${expected.toString(16)}`, { object: where });
  }
  return parseEntries(block, XATTR_BLOCK_HEADER_SIZE, what);
}

/** h_checksum of an attribute block (metadata_csum), as the table above says. */
export function xattrBlockChecksum(block: Uint8Array, blockNumber: number, seed: number): number {
  const number = new Uint8Array(8);
  new DataView(number.buffer).setBigUint64(0, BigInt(blockNumber), true);
  let crc = crc32cUpdate(seed, number);
  crc = crc32cUpdate(crc, block, 0, BLOCK.checksum);
  crc = crc32cUpdate(crc, new Uint8Array(4));
  return crc32cUpdate(crc, block, BLOCK.checksum + 4);
}

/**
 * Entries of `region` from byte `first` on; value offsets count from the region's first
 * byte. At most region.length / 16 entries: the loop always moves forward by at least 16.
 */
function parseEntries(region: Uint8Array, first: number, what: string): RawXattr[] {
  const v = view(region);
  const entries: { index: number; nameBytes: Uint8Array; offs: number; inum: number; size: number; at: number }[] = [];
  let at = first;
  for (;;) {
    if (at + 4 > region.length || v.getUint32(at, true) === 0) break; // the end marker (or the area's end)
    if (at + ENTRY_HEADER_SIZE > region.length) throw fsCorrupt('ext', `${what}: entry at byte ${at} is cut off by the end`);
    const nameLen = region[at + ENTRY.nameLen] as number;
    if (at + ENTRY_HEADER_SIZE + nameLen > region.length) throw fsCorrupt('ext', `${what}: the name of the entry at byte ${at} runs past the end`);
    entries.push({
      index: region[at + ENTRY.nameIndex] as number,
      nameBytes: region.subarray(at + ENTRY_HEADER_SIZE, at + ENTRY_HEADER_SIZE + nameLen),
      offs: v.getUint16(at + ENTRY.valueOffs, true),
      inum: v.getUint32(at + ENTRY.valueInum, true),
      size: v.getUint32(at + ENTRY.valueSize, true),
      at,
    });
    at += (ENTRY_HEADER_SIZE + nameLen + 3) & ~3;
  }
  const tableEnd = at + 4; // values lie past the end marker
  return entries.map((e) => {
    const prefix = PREFIXES.get(e.index);
    const name = prefix === undefined ? undefined : prefix + decodeName(e.nameBytes);
    if (e.inum !== 0) {
      if (e.size > MAX_XATTR_VALUE) throw fsCorrupt('ext', `${what}: the entry at byte ${e.at} claims a ${e.size}-byte value`);
      return { name, index: e.index, valueInode: { inode: e.inum, size: e.size } };
    }
    if (e.size === 0) return { name, index: e.index, value: new Uint8Array(0) };
    if (e.offs < tableEnd || e.offs + e.size > region.length) {
      throw fsCorrupt('ext', `${what}: the value of the entry at byte ${e.at} (${e.size} bytes at byte ${e.offs}) lies outside the values (bytes ${tableEnd}-${region.length})`);
    }
    return { name, index: e.index, value: region.subarray(e.offs, e.offs + e.size) };
  });
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
}
