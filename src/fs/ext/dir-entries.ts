/**
 * Linear directory entries, packed in each directory block (or in inline data), little-endian:
 *
 * | off | size | field      | meaning                                                        |
 * | 0   | 4    | inode      | 0: an unused slot (deleted entry, htree node, checksum tail)   |
 * | 4   | 2    | rec_len    | bytes to the next entry (≥ 8 + name_len, multiple of 4)        |
 * | 6   | 1    | name_len   | (without the filetype feature: bytes 6-7 are a 16-bit length) |
 * | 7   | 1    | file_type  | with filetype: 1 file, 2 dir, 3 chr, 4 blk, 5 fifo, 6 sock, 7 symlink; 0xDE marks the checksum tail |
 * | 8   | n    | name       | not NUL-terminated                                             |
 *
 * The entries of a block fill it exactly. With 64 KiB blocks rec_len 65535 (or 0) means
 * 65536, and larger lengths keep their low bits in bits 0-1.
 */
export interface RawDirEntry {
  readonly inode: number;
  readonly name: Uint8Array;
  readonly fileType: number;
}

/** A region of a directory that cannot be parsed past some offset. */
export interface DirDamage {
  readonly offset: number;
  readonly reason: string;
}

/** Real rec_len of an on-disk value (see the table above). */
export function recLenFromDisk(value: number, blockSize: number): number {
  if (blockSize < 65536) return value;
  if (value === 65535 || value === 0) return blockSize;
  return (value & 65532) | ((value & 3) << 16);
}

/**
 * Parses the entries of one region (a directory block, or the inline area). Unused slots
 * are skipped; parsing stops at the first entry whose lengths do not fit, and reports it as
 * damage. Names are returned exactly as stored (see {@link dropLeadingDots}).
 */
export function parseDirRegion(
  region: Uint8Array, options: { blockSize: number; fileType: boolean },
): { entries: RawDirEntry[]; damage?: DirDamage } {
  const view = new DataView(region.buffer, region.byteOffset, region.length);
  const entries: RawDirEntry[] = [];
  let at = 0;
  while (at < region.length) {
    if (at + 8 > region.length) return { entries, damage: { offset: at, reason: 'entry header runs past the block' } };
    const inode = view.getUint32(at, true);
    const recLen = recLenFromDisk(view.getUint16(at + 4, true), options.blockSize);
    const nameLen = options.fileType ? (region[at + 6] ?? 0) : view.getUint16(at + 6, true);
    const fileType = options.fileType ? (region[at + 7] ?? 0) : 0;
    if (recLen < 8 || recLen % 4 !== 0 || at + recLen > region.length) {
      return { entries, damage: { offset: at, reason: `record length ${recLen} does not fit` } };
    }
    if (inode !== 0) {
      if (8 + nameLen > recLen || nameLen === 0) return { entries, damage: { offset: at, reason: `name length ${nameLen} does not fit record of ${recLen}` } };
      entries.push({ inode, name: region.subarray(at + 8, at + 8 + nameLen), fileType });
    }
    at += recLen;
  }
  return { entries };
}

/**
 * The entries of a directory's first block without its own `.` and `..` (the first two
 * entries when so named). Any other entry named `.` or `..` (a crafted disk) is kept, as
 * the disk has it: callers that write files sanitize names.
 */
export function dropLeadingDots(entries: RawDirEntry[]): RawDirEntry[] {
  const isDots = (e: RawDirEntry | undefined, n: number): boolean =>
    e !== undefined && e.name.length === n && e.name.every((c) => c === 0x2e);
  let skip = 0;
  if (isDots(entries[0], 1)) skip = isDots(entries[1], 2) ? 2 : 1;
  return skip === 0 ? entries : entries.slice(skip);
}
