/**
 * qcow2 persistent dirty bitmaps, listed (not read): the bitmap directory named by the
 * bitmaps header extension. Each entry, big-endian, 8-byte aligned:
 *
 * ```
 * offset size field
 *      0    8 bitmap_table_offset
 *      8    4 bitmap_table_size
 *     12    4 flags: bit 0 in_use (QEMU had it open: possibly stale), bit 1 auto (tracks writes)
 *     16    1 type (1: dirty tracking)
 *     17    1 granularity_bits
 *     18    2 name_size
 *     20    4 extra_data_size
 *     24    n extra data, then the name, then padding to a multiple of 8
 * ```
 * Live backups use these bitmaps through QEMU; listing them tells an administrator which
 * checkpoints an image carries.
 */
import type { ImageFile } from '../image-file.js';

/** One persistent bitmap. */
export interface Qcow2Bitmap {
  name: string;
  granularity: number;
  inUse: boolean;
  auto: boolean;
}

/** Parses the bitmap directory (`count` entries within `size` bytes at `offset`). */
export async function readQcow2Bitmaps(file: ImageFile, directory: { offset: number; size: number } | null, count: number): Promise<Qcow2Bitmap[]> {
  if (directory === null || count === 0) return [];
  if (count > 65535) throw file.invalid(`qcow2 declares ${count} bitmaps`);
  const bytes = await file.readAt(directory.offset, directory.size);
  const bitmaps: Qcow2Bitmap[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 24 > bytes.length) throw file.invalid(`qcow2 bitmap directory ends inside entry ${i}`);
    const flags = bytes.readUInt32BE(at + 12);
    const granularityBits = bytes[at + 17] as number;
    const nameSize = bytes.readUInt16BE(at + 18);
    const extra = bytes.readUInt32BE(at + 20);
    const nameStart = at + 24 + extra;
    if (nameStart + nameSize > bytes.length || granularityBits < 9 || granularityBits > 31) throw file.invalid(`qcow2 bitmap directory entry ${i} is malformed`);
    bitmaps.push({
      name: bytes.subarray(nameStart, nameStart + nameSize).toString('utf8'),
      granularity: 2 ** granularityBits,
      inUse: (flags & 1) !== 0,
      auto: (flags & 2) !== 0,
    });
    at += Math.ceil((24 + extra + nameSize) / 8) * 8;
  }
  return bitmaps;
}
