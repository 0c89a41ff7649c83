import { fsCorrupt } from '../fs-errors.js';
import { ATTR_FLAG, MAX_ATTR_VALUE, type RawAttr } from './attr-entry.js';
import { xfsCrcMatches } from './crc32c.js';

/**
 * The blocks of an attribute fork that is not short-form (v5 layouts, xfs_da_format.h), each
 * one filesystem block, big-endian except the CRC. Blocks are named by their logical block
 * number in the attribute fork; the fork's block map says where they lie.
 *
 * Leaf and node blocks start with the same "da" header (struct xfs_da3_blkinfo):
 * | offset | size | field  | meaning                                                     |
 * |-------:|-----:|--------|-------------------------------------------------------------|
 * |      0 |    4 | forw   | next block at this level (logical block, 0: none)           |
 * |      4 |    4 | back   | previous block                                              |
 * |      8 |    2 | magic  | 0x3bee attribute leaf (ATTR3_LEAF), 0x3ebe node (DA3_NODE)  |
 * |     12 |    4 | crc    | CRC-32C of the block (little-endian)                        |
 * |     16 |    8 | blkno  | the block's own address in 512-byte sectors                 |
 * |     24 |    8 | lsn    |                                                             |
 * |     32 |   16 | uuid   |                                                             |
 * |     48 |    8 | owner  | the inode number                                            |
 *
 * Logical block 0 is the whole tree when it is a leaf (leaf form), or its root node (node
 * form: a B+tree keyed by name hash, at most 5 levels, leaves at level 0).
 *
 * Node (struct xfs_da3_intnode): u16 count at 56, u16 level at 58 (1 above the leaves),
 * then from 64 `count` pairs of u32 hashval (the greatest hash below) and u32 before (the
 * child's logical block), in hash order.
 *
 * Leaf (struct xfs_attr3_leafblock):
 * | offset | size | field     | meaning                                                  |
 * |-------:|-----:|-----------|----------------------------------------------------------|
 * |     56 |    2 | count     | entries                                                  |
 * |     58 |    2 | usedbytes | bytes of names and values                                |
 * |     60 |    2 | firstused | lowest byte of the name/value area                       |
 * |     62 |    1 | holes     |                                                          |
 * |     64 |   12 | freemap   | three (u16 base, u16 size) free regions                  |
 * |     80 |  8·n | entries   | u32 hashval, u16 nameidx, u8 flags, u8 pad; hash order   |
 * The name/value structure an entry's nameidx points at (4-byte aligned, above the entries):
 * local (flag LOCAL): u16 valuelen, u8 namelen, the name, the value; remote: u32 valueblk
 * (the value's first logical block), u32 valuelen, u8 namelen, the name.
 *
 * A remote value takes ceil(valuelen / (blocksize - 56)) consecutive logical blocks, each
 * with a header (struct xfs_attr3_rmt_hdr) before its piece of the value:
 * | offset | size | field  | meaning                                                     |
 * |-------:|-----:|--------|-------------------------------------------------------------|
 * |      0 |    4 | magic  | `XARM` (0x5841524d)                                         |
 * |      4 |    4 | offset | byte of the value this block starts at                      |
 * |      8 |    4 | bytes  | bytes of the value in this block                            |
 * |     12 |    4 | crc    | CRC-32C of the block (little-endian)                        |
 * |     16 |   16 | uuid   |                                                             |
 * |     32 |    8 | owner  | the inode number                                            |
 * |     40 |    8 | blkno  | the block's own address in 512-byte sectors                 |
 * |     48 |    8 | lsn    |                                                             |
 * The value's bytes follow from byte 56. (v4 filesystems, which Coffer does not read, have
 * no header there.)
 */
export const ATTR_LEAF_MAGIC = 0x3bee;
export const ATTR_NODE_MAGIC = 0x3ebe;
const REMOTE_MAGIC = 0x5841524d;
const DA = { forw: 0, magic: 8, crc: 12, blkno: 16, owner: 48, count: 56, level: 58 } as const;
const NODE_HEADER_SIZE = 64;
const LEAF_HEADER_SIZE = 80;
const LEAF_ENTRY_SIZE = 8;
const LEAF_ENTRY = { nameidx: 4, flags: 6 } as const;
const REMOTE = { offset: 4, bytes: 8, crc: 12, owner: 32, blkno: 40 } as const;
export const REMOTE_HEADER_SIZE = 56;

/** What a block must say about itself: its owner and its own address. */
export interface AttrBlockPlace {
  ino: bigint;
  /** The block's address in 512-byte sectors. */
  daddr: number;
  /** Names the block in errors (`inode 131: attribute block 3`). */
  what: string;
  /** Names the inode (`inode 131`), the errors' subject. */
  where: string;
}

/** The magic of a leaf or node block (the da header's), read before it is parsed. */
export function daMagic(block: Uint8Array): number {
  return block.length < DA.magic + 2 ? 0 : new DataView(block.buffer, block.byteOffset, block.byteLength).getUint16(DA.magic);
}

/** A node's children, in hash order: their logical blocks. Checks magic, CRC, owner, address and that the entries fit. */
export function parseAttrNode(block: Uint8Array, place: AttrBlockPlace): { level: number; children: number[] } {
  const view = checkDaBlock(block, ATTR_NODE_MAGIC, place);
  const count = view.getUint16(DA.count);
  const level = view.getUint16(DA.level);
  if (count === 0 || NODE_HEADER_SIZE + count * 8 > block.length) throw fsCorrupt('xfs', `${place.what}: a node of ${count} entries`, { object: place.where });
  const children: number[] = [];
  for (let i = 0; i < count; i++) children.push(view.getUint32(NODE_HEADER_SIZE + i * 8 + 4));
  return { level, children };
}

/**
 * A leaf's entries in on-disk (hash) order, incomplete ones left out. Checks magic, CRC,
 * owner, address, and that every name and local value lies in the block above the entries.
 */
export function parseAttrLeaf(block: Uint8Array, place: AttrBlockPlace): RawAttr[] {
  const view = checkDaBlock(block, ATTR_LEAF_MAGIC, place);
  const count = view.getUint16(DA.count);
  const entriesEnd = LEAF_HEADER_SIZE + count * LEAF_ENTRY_SIZE;
  if (entriesEnd > block.length) throw fsCorrupt('xfs', `${place.what}: ${count} entries do not fit`, { object: place.where });
  const out: RawAttr[] = [];
  for (let i = 0; i < count; i++) {
    const at = LEAF_HEADER_SIZE + i * LEAF_ENTRY_SIZE;
    const flags = view.getUint8(at + LEAF_ENTRY.flags);
    if ((flags & ATTR_FLAG.INCOMPLETE) !== 0) continue;
    const nameidx = view.getUint16(at + LEAF_ENTRY.nameidx);
    const bad = (why: string): never => {
      throw fsCorrupt('xfs', `${place.what}: entry ${i} (at byte ${nameidx}) ${why}`, { object: place.where });
    };
    if (nameidx < entriesEnd) bad(`overlaps the ${count} entries`);
    if ((flags & ATTR_FLAG.LOCAL) !== 0) {
      if (nameidx + 3 > block.length) bad('lies beyond the block');
      const valueLength = view.getUint16(nameidx);
      const nameLength = view.getUint8(nameidx + 2);
      const nameAt = nameidx + 3;
      const end = nameAt + nameLength + valueLength;
      if (nameLength === 0 || end > block.length) bad(`(name ${nameLength}, value ${valueLength} bytes) does not fit`);
      out.push({ flags, name: block.subarray(nameAt, nameAt + nameLength), value: block.subarray(nameAt + nameLength, end) });
    } else {
      if (nameidx + 9 > block.length) bad('lies beyond the block');
      const valueBlock = view.getUint32(nameidx);
      const valueLength = view.getUint32(nameidx + 4);
      const nameLength = view.getUint8(nameidx + 8);
      const nameAt = nameidx + 9;
      if (nameLength === 0 || nameAt + nameLength > block.length) bad(`(name ${nameLength} bytes) does not fit`);
      if (valueBlock === 0 || valueLength > MAX_ATTR_VALUE) bad(`claims a ${valueLength}-byte value at block ${valueBlock}`);
      out.push({ flags, name: block.subarray(nameAt, nameAt + nameLength), remote: { block: valueBlock, length: valueLength } });
    }
  }
  return out;
}

/**
 * The piece of a remote value one block holds, which must start at byte `offset` of the
 * value and be `length` bytes long. Checks magic, CRC, owner and address.
 */
export function parseRemoteBlock(block: Uint8Array, place: AttrBlockPlace, offset: number, length: number): Uint8Array {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (block.length < REMOTE_HEADER_SIZE + length) throw fsCorrupt('xfs', `${place.what}: a remote value block of ${block.length} bytes`, { object: place.where });
  if (view.getUint32(0) !== REMOTE_MAGIC) throw fsCorrupt('xfs', `${place.what}: not a remote value block (magic 0x${view.getUint32(0).toString(16)})`, { object: place.where });
  if (!xfsCrcMatches(block, REMOTE.crc)) throw fsCorrupt('xfs', `${place.what}: checksum mismatch`, { object: place.where });
  checkOwnerAndAddress(view, REMOTE.owner, REMOTE.blkno, place);
  const at = view.getUint32(REMOTE.offset);
  const bytes = view.getUint32(REMOTE.bytes);
  if (at !== offset || bytes !== length) throw fsCorrupt('xfs', `${place.what}: holds bytes ${at}+${bytes} of a value, not ${offset}+${length}`, { object: place.where });
  return block.subarray(REMOTE_HEADER_SIZE, REMOTE_HEADER_SIZE + length);
}

function checkDaBlock(block: Uint8Array, magic: number, place: AttrBlockPlace): DataView {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (block.length < LEAF_HEADER_SIZE) throw fsCorrupt('xfs', `${place.what}: a block of ${block.length} bytes`, { object: place.where });
  const found = view.getUint16(DA.magic);
  if (found !== magic) throw fsCorrupt('xfs', `${place.what}: bad magic 0x${found.toString(16)}, expected 0x${magic.toString(16)}`, { object: place.where });
  if (!xfsCrcMatches(block, DA.crc)) throw fsCorrupt('xfs', `${place.what}: checksum mismatch`, { object: place.where });
  checkOwnerAndAddress(view, DA.owner, DA.blkno, place);
  return view;
}

function checkOwnerAndAddress(view: DataView, ownerAt: number, blknoAt: number, place: AttrBlockPlace): void {
  const owner = view.getBigUint64(ownerAt);
  if (owner !== place.ino) throw fsCorrupt('xfs', `${place.what}: belongs to inode ${owner}`, { object: place.where });
  const blkno = view.getBigUint64(blknoAt);
  if (blkno !== BigInt(place.daddr)) throw fsCorrupt('xfs', `${place.what}: says it lies at sector ${blkno}, not ${place.daddr}`, { object: place.where });
}
