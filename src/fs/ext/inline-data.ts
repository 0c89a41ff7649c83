import { fsCorrupt } from '../fs-errors.js';
import { iBlock, I_BLOCK_SIZE, type ExtInode } from './inode.js';

/**
 * Inline data (the inline_data feature, inode flag INLINE_DATA): a small file's or
 * directory's content lives in the inode itself: the first 60 bytes in i_block, the rest in
 * the value of the in-inode extended attribute `system.data`.
 *
 * In-inode extended attributes start at 128 + i_extra_isize:
 *
 * | off | size | field         | meaning                                                   |
 * | 0   | 4    | h_magic       | 0xEA020000                                                |
 * | 4   | …    | entries       | until 4 zero bytes or the end of the inode                |
 *
 * Each entry (padded to 4 bytes):
 *
 * | 0   | 1    | e_name_len    |                                                           |
 * | 1   | 1    | e_name_index  | 7 = "system." prefix                                      |
 * | 2   | 2    | e_value_offs  | value offset, from the first entry (just after h_magic)   |
 * | 4   | 4    | e_value_inum  | non-zero: the value is in another inode (ea_inode)        |
 * | 8   | 4    | e_value_size  |                                                           |
 * | 12  | 4    | e_hash        |                                                           |
 * | 16  | n    | e_name        |                                                           |
 */
const XATTR_MAGIC = 0xea020000;
const NAME_INDEX_SYSTEM = 7;

/** The value of in-inode xattr `system.data` (empty when there is none). */
export function inlineDataTail(inode: ExtInode): Uint8Array {
  const start = inode.usedSize;
  const raw = inode.raw;
  if (start + 4 > raw.length) return new Uint8Array(0);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.length);
  if (view.getUint32(start, true) !== XATTR_MAGIC) return new Uint8Array(0);
  const first = start + 4;
  let at = first;
  while (at + 16 <= raw.length) {
    const nameLen = raw[at] ?? 0;
    const index = raw[at + 1] ?? 0;
    if (nameLen === 0 && index === 0 && view.getUint16(at + 2, true) === 0) break; // end marker
    const valueOffs = view.getUint16(at + 2, true);
    const valueInum = view.getUint32(at + 4, true);
    const valueSize = view.getUint32(at + 8, true);
    if (at + 16 + nameLen > raw.length) break;
    const name = Buffer.from(raw.subarray(at + 16, at + 16 + nameLen)).toString('latin1');
    if (index === NAME_INDEX_SYSTEM && name === 'data') {
      if (valueInum !== 0) throw fsCorrupt('ext', `inode ${inode.number}: inline data stored in another inode`, { object: `inode ${inode.number}` });
      const from = first + valueOffs;
      if (valueSize === 0) return new Uint8Array(0);
      if (from + valueSize > raw.length) throw fsCorrupt('ext', `inode ${inode.number}: inline data runs past the inode`, { object: `inode ${inode.number}` });
      return raw.subarray(from, from + valueSize);
    }
    at += (16 + nameLen + 3) & ~3;
  }
  return new Uint8Array(0);
}

/** A file's or symlink's whole inline content, clipped to its size. */
export function inlineContent(inode: ExtInode): Uint8Array {
  const head = iBlock(inode);
  if (inode.size <= I_BLOCK_SIZE) return head.subarray(0, inode.size);
  const tail = inlineDataTail(inode);
  if (I_BLOCK_SIZE + tail.length < inode.size) {
    throw fsCorrupt('ext', `inode ${inode.number}: ${inode.size} bytes of inline data claimed, ${I_BLOCK_SIZE + tail.length} stored`, { object: `inode ${inode.number}` });
  }
  const out = new Uint8Array(inode.size);
  out.set(head);
  out.set(tail.subarray(0, inode.size - I_BLOCK_SIZE), I_BLOCK_SIZE);
  return out;
}
