import { fsCorrupt } from '../fs-errors.js';

/**
 * A short-form directory (struct xfs_dir2_sf_hdr and entries), held in the inode's data
 * fork when it fits:
 * | offset | size   | field    | meaning                                                   |
 * |-------:|-------:|----------|-----------------------------------------------------------|
 * |      0 |      1 | count    | entries with 4-byte inode numbers (when i8count is 0)    |
 * |      1 |      1 | i8count  | entries with 8-byte inode numbers (all of them, if not 0) |
 * |      2 |   4/8  | parent   | the parent's inode number                                 |
 * Then each entry: u8 namelen, u16 offset (the entry's place in block form, for telldir),
 * name, u8 file type (ftype filesystems only), inode number (4 or 8 bytes).
 */
export interface RawDirEntry {
  name: Uint8Array;
  ino: bigint;
}

/** The entries of a short-form directory's data fork (of which `size` bytes are used). */
export function parseShortformDir(fork: Uint8Array, size: number, hasFtype: boolean, what: string): RawDirEntry[] {
  if (size > fork.length || size < 6) throw fsCorrupt('xfs', `${what}: short-form directory of ${size} bytes`);
  const view = new DataView(fork.buffer, fork.byteOffset, size);
  const count = view.getUint8(0);
  const i8count = view.getUint8(1);
  const inoBytes = i8count === 0 ? 4 : 8;
  const entries = i8count === 0 ? count : i8count;
  let at = 2 + inoBytes;
  const out: RawDirEntry[] = [];
  for (let i = 0; i < entries; i++) {
    if (at + 3 > size) throw fsCorrupt('xfs', `${what}: short-form entry ${i} beyond the directory`);
    const namelen = view.getUint8(at);
    const nameAt = at + 3;
    const inoAt = nameAt + namelen + (hasFtype ? 1 : 0);
    if (namelen === 0 || inoAt + inoBytes > size) throw fsCorrupt('xfs', `${what}: short-form entry ${i} is damaged`);
    const ino = inoBytes === 4 ? BigInt(view.getUint32(inoAt)) : view.getBigUint64(inoAt);
    out.push({ name: fork.subarray(nameAt, nameAt + namelen), ino });
    at = inoAt + inoBytes;
  }
  return out;
}
