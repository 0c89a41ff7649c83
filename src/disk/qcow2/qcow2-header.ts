/**
 * The qcow2 header, versions 2 and 3 (QEMU's docs/interop/qcow2.txt). Big-endian.
 *
 * ```
 * offset size field
 *      0    4 magic "QFI\xfb"
 *      4    4 version: 2 or 3
 *      8    8 backing_file_offset (0: no backing file)
 *     16    4 backing_file_size (at most 1023)
 *     20    4 cluster_bits: 9..21 (512 B .. 2 MiB clusters)
 *     24    8 size: virtual disk size in bytes
 *     32    4 crypt_method: 0 none, 1 AES, 2 LUKS
 *     36    4 l1_size: entries in the active L1 table
 *     40    8 l1_table_offset
 *     48    8 refcount_table_offset
 *     56    4 refcount_table_clusters
 *     60    4 nb_snapshots
 *     64    8 snapshots_offset
 * version 3 only:
 *     72    8 incompatible_features: bit 0 dirty, 1 corrupt, 2 external data file,
 *              3 compression type, 4 extended L2 entries
 *     80    8 compatible_features
 *     88    8 autoclear_features
 *     96    4 refcount_order
 *    100    4 header_length (version 2: 72)
 *    104    1 compression_type (when header_length > 104): 0 zlib, 1 zstd
 * ```
 * Header extensions follow at header_length, each `type u32, length u32, data` padded to 8
 * bytes, until type 0. Coffer reads: 0xe2792aca backing file format name, 0x23852875
 * bitmaps (`nb_bitmaps u32, reserved u32, directory size u64, directory offset u64`;
 * listed, see qcow2-bitmaps.ts), 0x0537be77 full disk encryption and 0x44415441 external
 * data file (refused as unsupported).
 */
import type { ImageFile } from '../image-file.js';

export const QCOW2_MAGIC = 0x514649fb;
const V2_HEADER_LENGTH = 72;
const MAX_BACKING_NAME = 1023;
/** L1 tables above 32 MiB (4 million entries) are refused, as QEMU does. */
const MAX_L1_BYTES = 32 * 1024 * 1024;
/** Virtual sizes above 64 PiB are refused; QEMU's limit is lower still. */
const MAX_VIRTUAL_SIZE = 2 ** 56;

const INCOMPAT_DIRTY = 1n << 0n;
const INCOMPAT_CORRUPT = 1n << 1n;
const INCOMPAT_EXTERNAL_DATA = 1n << 2n;
const INCOMPAT_COMPRESSION_TYPE = 1n << 3n;
const INCOMPAT_EXTENDED_L2 = 1n << 4n;
const KNOWN_INCOMPAT = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_EXTERNAL_DATA | INCOMPAT_COMPRESSION_TYPE | INCOMPAT_EXTENDED_L2;

const EXT_END = 0;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_BITMAPS = 0x23852875;
const EXT_ENCRYPTION = 0x0537be77;
const EXT_EXTERNAL_DATA = 0x44415441;

/** The parsed, validated header. */
export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  clusterSize: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  snapshotCount: number;
  snapshotsOffset: number;
  backingFile: string | null;
  backingFormat: string | null;
  compression: 'zlib' | 'zstd';
  extendedL2: boolean;
  /** The image was not closed cleanly: refcounts may be stale (reading is still fine). */
  dirty: boolean;
  /** Number of persistent dirty bitmaps the image declares. */
  bitmapCount: number;
  /** Where their directory lies (bitmaps extension), or null. */
  bitmapDirectory: { offset: number; size: number } | null;
}

/** Reads and checks the header of a qcow2 image; every value is bounded before use. */
export async function readQcow2Header(file: ImageFile): Promise<Qcow2Header> {
  const head = await file.readAt(0, Math.min(file.size, 4096));
  if (head.length < V2_HEADER_LENGTH || head.readUInt32BE(0) !== QCOW2_MAGIC) throw file.invalid('not a qcow2 image (bad magic or too short)');
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw file.unsupported(`qcow2 version ${version}`);
  const u64 = (offset: number, name: string): number => {
    const value = head.readBigUInt64BE(offset);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw file.invalid(`qcow2 ${name} ${value} is out of range`);
    return Number(value);
  };
  const clusterBits = head.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw file.invalid(`qcow2 cluster_bits ${clusterBits} is outside 9..21`);
  const clusterSize = 2 ** clusterBits;
  const size = u64(24, 'size');
  if (size > MAX_VIRTUAL_SIZE) throw file.invalid(`qcow2 virtual size ${size} is absurd`);
  const cryptMethod = head.readUInt32BE(32);
  if (cryptMethod !== 0) throw file.unsupported(`an encrypted qcow2 image (crypt_method ${cryptMethod})`);

  let headerLength = V2_HEADER_LENGTH;
  let incompatible = 0n;
  let compressionType = 0;
  if (version === 3) {
    if (head.length < 104) throw file.invalid('qcow2 v3 header is truncated');
    incompatible = head.readBigUInt64BE(72);
    headerLength = head.readUInt32BE(100);
    if (headerLength < 104 || headerLength > head.length || headerLength % 8 !== 0 && headerLength !== 104) {
      throw file.invalid(`qcow2 header_length ${headerLength} is invalid`);
    }
    if (headerLength > 104) compressionType = head[104] as number;
  }
  if ((incompatible & ~KNOWN_INCOMPAT) !== 0n) throw file.unsupported(`qcow2 incompatible feature bits 0x${(incompatible & ~KNOWN_INCOMPAT).toString(16)}`);
  if (incompatible & INCOMPAT_EXTERNAL_DATA) throw file.unsupported('a qcow2 image with an external data file');
  if (incompatible & INCOMPAT_CORRUPT) throw file.invalid('QEMU marked this qcow2 image corrupt; repair it with qemu-img check -r all first');
  const compression = incompatible & INCOMPAT_COMPRESSION_TYPE ? compressionType : 0;
  if (compression !== 0 && compression !== 1) throw file.unsupported(`qcow2 compression type ${compression}`);

  const l1Size = head.readUInt32BE(36);
  const l1TableOffset = u64(40, 'l1_table_offset');
  const extendedL2 = (incompatible & INCOMPAT_EXTENDED_L2) !== 0n;
  const l2Entries = clusterSize / (extendedL2 ? 16 : 8);
  const needed = Math.ceil(size / (clusterSize * l2Entries));
  if (l1Size < needed) throw file.invalid(`qcow2 L1 table has ${l1Size} entries, the virtual size needs ${needed}`);
  if (l1Size * 8 > MAX_L1_BYTES) throw file.invalid(`qcow2 L1 table of ${l1Size} entries is too large`);
  if (l1Size > 0 && (l1TableOffset % clusterSize !== 0 || l1TableOffset + l1Size * 8 > file.size)) {
    throw file.invalid(`qcow2 L1 table at ${l1TableOffset} lies outside the file or is misaligned`);
  }

  let backingFile: string | null = null;
  const backingOffset = u64(8, 'backing_file_offset');
  if (backingOffset !== 0) {
    const backingSize = head.readUInt32BE(16);
    if (backingSize === 0 || backingSize > MAX_BACKING_NAME) throw file.invalid(`qcow2 backing file name of ${backingSize} bytes`);
    backingFile = (await file.readAt(backingOffset, backingSize)).toString('utf8');
  }

  let backingFormat: string | null = null;
  let bitmapCount = 0;
  let bitmapDirectory: Qcow2Header['bitmapDirectory'] = null;
  for (let offset = headerLength; ; ) {
    if (offset + 8 > head.length) throw file.invalid('qcow2 header extensions run past the first 4 KiB');
    const type = head.readUInt32BE(offset);
    const length = head.readUInt32BE(offset + 4);
    if (type === EXT_END) break;
    const dataStart = offset + 8;
    if (dataStart + length > head.length) throw file.invalid(`qcow2 header extension 0x${type.toString(16)} runs past the header`);
    const data = head.subarray(dataStart, dataStart + length);
    if (type === EXT_BACKING_FORMAT) backingFormat = data.toString('utf8');
    else if (type === EXT_ENCRYPTION) throw file.unsupported('an encrypted qcow2 image (LUKS)');
    else if (type === EXT_EXTERNAL_DATA) throw file.unsupported('a qcow2 image with an external data file');
    else if (type === EXT_BITMAPS && length >= 24) {
      bitmapCount = data.readUInt32BE(0);
      const size = data.readBigUInt64BE(8);
      const offset = data.readBigUInt64BE(16);
      if (size > 64n * 1024n * 1024n || offset > BigInt(Number.MAX_SAFE_INTEGER)) throw file.invalid('qcow2 bitmap directory is out of range');
      bitmapDirectory = { offset: Number(offset), size: Number(size) };
    }
    offset = dataStart + Math.ceil(length / 8) * 8;
  }

  return {
    version,
    clusterBits,
    clusterSize,
    size,
    l1Size,
    l1TableOffset,
    snapshotCount: head.readUInt32BE(60),
    snapshotsOffset: u64(64, 'snapshots_offset'),
    backingFile,
    backingFormat,
    compression: compression === 1 ? 'zstd' : 'zlib',
    extendedL2,
    dirty: (incompatible & INCOMPAT_DIRTY) !== 0n,
    bitmapCount,
    bitmapDirectory,
  };
}
