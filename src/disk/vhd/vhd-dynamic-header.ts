/**
 * The VHD dynamic disk header, which dynamic and differencing disks keep at the footer's data
 * offset (usually 512). 1024 bytes, big-endian.
 *
 * ```
 * offset size field
 *      0    8 cookie "cxsparse"
 *      8    8 data offset: unused, all ones
 *     16    8 table offset: where the block allocation table (BAT) starts
 *     24    4 header version: 0x00010000
 *     28    4 max table entries: BAT entries (blocks the disk can hold)
 *     32    4 block size: bytes of guest data per block, a power of two (2 MiB by default)
 *     36    4 checksum: one's complement of the sum of all 1024 bytes, this field taken as 0
 *     40   16 parent unique id: the parent's footer unique id (differencing disks)
 *     56    4 parent time stamp: the parent's modification time, seconds since 2000
 *     60    4 reserved
 *     64  512 parent unicode name: UTF-16 big-endian, zero-padded
 *    576  192 parent locator entries: 8 × 24 bytes, below
 *    768  256 reserved
 * ```
 * A parent locator entry (24 bytes):
 * ```
 *      0    4 platform code: "W2ru" Windows relative path (UTF-16LE), "W2ku" Windows
 *              absolute path (UTF-16LE), "MacX" file URL (UTF-8), "Wi2r"/"Wi2k" deprecated
 *              relative/absolute paths, "Mac " a Mac OS alias blob; 0: unused entry
 *      4    4 platform data space: room reserved for the data (sectors per the
 *              specification, bytes as some writers store it)
 *      8    4 platform data length: bytes of locator data
 *     12    4 reserved
 *     16    8 platform data offset: where the data lies in the file
 * ```
 * The BAT follows at the table offset: max table entries big-endian u32, each the sector
 * (512-byte unit) where a block's sector bitmap starts, or 0xFFFFFFFF when the block is not
 * allocated. A block is its sector bitmap (one bit per sector, most significant bit of each
 * byte first, padded to a multiple of 512 bytes) followed by the block's data.
 *
 * PLEASE DO NOT MODIFY THESE MAGIC VALUES: they are the format.
 */
import type { ImageFile } from '../image-file.js';
import { vhdChecksum, VHD_SECTOR } from './vhd-footer.js';

export const VHD_DYNAMIC_HEADER_SIZE = 1024;
export const VHD_DYNAMIC_HEADER_COOKIE = 'cxsparse';

export const DYNAMIC_HEADER = {
  cookie: 0,
  dataOffset: 8,
  tableOffset: 16,
  version: 24,
  maxTableEntries: 28,
  blockSize: 32,
  checksum: 36,
  parentUniqueId: 40,
  parentTimestamp: 56,
  reserved1: 60,
  parentName: 64,
  parentLocators: 576,
  reserved2: 768,
} as const;
export const PARENT_NAME_SIZE = 512;
export const PARENT_LOCATOR_COUNT = 8;
export const PARENT_LOCATOR_SIZE = 24;
export const LOCATOR = { platformCode: 0, dataSpace: 4, dataLength: 8, reserved: 12, dataOffset: 16 } as const;
if (
  DYNAMIC_HEADER.parentName + PARENT_NAME_SIZE !== DYNAMIC_HEADER.parentLocators ||
  DYNAMIC_HEADER.parentLocators + PARENT_LOCATOR_COUNT * PARENT_LOCATOR_SIZE !== DYNAMIC_HEADER.reserved2 ||
  DYNAMIC_HEADER.reserved2 + 256 !== VHD_DYNAMIC_HEADER_SIZE
) {
  throw new Error('VHD dynamic header layout does not add up to 1024 bytes');
}

/** BAT entry of a block that is not allocated. */
export const BAT_UNALLOCATED = 0xffff_ffff;
/** Block sizes accepted: QEMU writes 2 MiB, Hyper-V 2 MiB or 512 KiB (32 MiB for some). */
export const MIN_BLOCK_SIZE = VHD_SECTOR;
export const MAX_BLOCK_SIZE = 256 * 1024 * 1024;
/** At most 2^22 BAT entries (16 MiB of table), kept in memory whole. */
export const MAX_TABLE_ENTRIES = 2 ** 22;
/** Longest locator data read: a Windows path of 32767 UTF-16 units. */
export const MAX_LOCATOR_BYTES = 65_536;

const SUPPORTED_MAJOR_VERSION = 1;

/** Platform codes of the locators Coffer can turn into a path, best first. */
export const LOCATOR_PLATFORMS = ['W2ru', 'W2ku', 'MacX', 'Wi2r', 'Wi2k'] as const;
export type LocatorPlatform = (typeof LOCATOR_PLATFORMS)[number];

/** One used parent locator entry, its data range checked to lie inside the file. */
export interface ParentLocator {
  /** The four-character platform code, e.g. "W2ru". */
  platform: string;
  dataSpace: number;
  dataLength: number;
  dataOffset: number;
}

/** A parsed, checked dynamic disk header. */
export interface VhdDynamicHeader {
  tableOffset: number;
  version: number;
  maxTableEntries: number;
  blockSize: number;
  /** Bytes of the sector bitmap before each block's data: one bit per sector, padded to 512. */
  bitmapSize: number;
  checksum: number;
  /** 32 lowercase hex digits; all zeros when the disk has no parent. */
  parentUniqueId: string;
  parentTimestamp: number;
  /** The parent unicode name, or null when empty. */
  parentName: string | null;
  /** The used locator entries, in header order. */
  parentLocators: ParentLocator[];
}

/**
 * Parses and checks a 1024-byte dynamic disk header against the image's size: cookie,
 * checksum, version, block size, table bounds, locator data bounds. Throws `E_IMAGE_INVALID`
 * (`E_UNSUPPORTED_FORMAT` for an unknown header version) naming the image.
 */
export function parseVhdDynamicHeader(bytes: Uint8Array, image: Pick<ImageFile, 'invalid' | 'unsupported' | 'size'>): VhdDynamicHeader {
  if (bytes.length !== VHD_DYNAMIC_HEADER_SIZE) throw image.invalid(`VHD dynamic header is ${bytes.length} bytes, not ${VHD_DYNAMIC_HEADER_SIZE}`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.toString('latin1', 0, 8) !== VHD_DYNAMIC_HEADER_COOKIE) throw image.invalid(`VHD dynamic header lacks its "${VHD_DYNAMIC_HEADER_COOKIE}" cookie`);
  const checksum = b.readUInt32BE(DYNAMIC_HEADER.checksum);
  const computed = vhdChecksum(b, DYNAMIC_HEADER.checksum);
  if (checksum !== computed) throw image.invalid(`VHD dynamic header checksum is 0x${hex32(checksum)} but its bytes sum to 0x${hex32(computed)}: the header is damaged`);
  const version = b.readUInt32BE(DYNAMIC_HEADER.version);
  if (version >>> 16 !== SUPPORTED_MAJOR_VERSION) throw image.unsupported(`VHD dynamic header version 0x${hex32(version)}`);

  const blockSize = b.readUInt32BE(DYNAMIC_HEADER.blockSize);
  if (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE || (blockSize & (blockSize - 1)) !== 0) {
    throw image.invalid(`VHD block size ${blockSize} is not a power of two between 512 bytes and 256 MiB`);
  }
  const maxTableEntries = b.readUInt32BE(DYNAMIC_HEADER.maxTableEntries);
  if (maxTableEntries > MAX_TABLE_ENTRIES) throw image.invalid(`VHD block allocation table of ${maxTableEntries} entries is larger than ${MAX_TABLE_ENTRIES}`);
  const rawTableOffset = b.readBigUInt64BE(DYNAMIC_HEADER.tableOffset);
  const tableEnd = rawTableOffset + BigInt(maxTableEntries * 4);
  if (tableEnd > BigInt(image.size)) {
    throw image.invalid(`VHD block allocation table at ${rawTableOffset} (${maxTableEntries} entries) runs past the end of the file (${image.size} bytes)`);
  }

  const parentLocators: ParentLocator[] = [];
  for (let i = 0; i < PARENT_LOCATOR_COUNT; i++) {
    const at = DYNAMIC_HEADER.parentLocators + i * PARENT_LOCATOR_SIZE;
    const code = b.readUInt32BE(at + LOCATOR.platformCode);
    if (code === 0) continue;
    const dataLength = b.readUInt32BE(at + LOCATOR.dataLength);
    const dataOffset = b.readBigUInt64BE(at + LOCATOR.dataOffset);
    if (dataLength > MAX_LOCATOR_BYTES) throw image.invalid(`VHD parent locator ${i} holds ${dataLength} bytes, more than any path`);
    if (dataOffset + BigInt(dataLength) > BigInt(image.size)) throw image.invalid(`VHD parent locator ${i} data at ${dataOffset} runs past the end of the file`);
    parentLocators.push({
      platform: b.toString('latin1', at + LOCATOR.platformCode, at + LOCATOR.platformCode + 4),
      dataSpace: b.readUInt32BE(at + LOCATOR.dataSpace),
      dataLength,
      dataOffset: Number(dataOffset),
    });
  }

  return {
    tableOffset: Number(rawTableOffset),
    version,
    maxTableEntries,
    blockSize,
    bitmapSize: Math.ceil(blockSize / VHD_SECTOR / 8 / VHD_SECTOR) * VHD_SECTOR,
    checksum,
    parentUniqueId: b.toString('hex', DYNAMIC_HEADER.parentUniqueId, DYNAMIC_HEADER.parentUniqueId + 16),
    parentTimestamp: b.readUInt32BE(DYNAMIC_HEADER.parentTimestamp),
    parentName: decodeUtf16(b.subarray(DYNAMIC_HEADER.parentName, DYNAMIC_HEADER.parentName + PARENT_NAME_SIZE), 'be'),
    parentLocators,
  };
}

/**
 * Encodes the 1024-byte dynamic header of a disk without a parent (no parent id, name or
 * locators), computing its checksum: the inverse of {@link parseVhdDynamicHeader} for the
 * fields given.
 */
export function encodeVhdDynamicHeader(header: Pick<VhdDynamicHeader, 'tableOffset' | 'maxTableEntries' | 'blockSize'>): Buffer {
  const b = Buffer.alloc(VHD_DYNAMIC_HEADER_SIZE);
  b.write(VHD_DYNAMIC_HEADER_COOKIE, DYNAMIC_HEADER.cookie, 'latin1');
  b.writeBigUInt64BE(0xffff_ffff_ffff_ffffn, DYNAMIC_HEADER.dataOffset);
  b.writeBigUInt64BE(BigInt(header.tableOffset), DYNAMIC_HEADER.tableOffset);
  b.writeUInt32BE(SUPPORTED_MAJOR_VERSION << 16, DYNAMIC_HEADER.version);
  b.writeUInt32BE(header.maxTableEntries, DYNAMIC_HEADER.maxTableEntries);
  b.writeUInt32BE(header.blockSize, DYNAMIC_HEADER.blockSize);
  b.writeUInt32BE(vhdChecksum(b, DYNAMIC_HEADER.checksum), DYNAMIC_HEADER.checksum);
  return b;
}

/**
 * The path a locator's data names, as stored (Windows separators kept), or null for a
 * platform that names no path ("Mac " aliases, unknown codes) or empty data.
 */
export function decodeParentLocator(platform: string, data: Uint8Array): string | null {
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  switch (platform) {
    case 'W2ru':
    case 'W2ku':
      return decodeUtf16(b, 'le');
    case 'Wi2r':
    case 'Wi2k':
      return nonEmpty(b.toString('latin1').replace(/\0.*$/s, ''));
    case 'MacX': {
      const url = b.toString('utf8').replace(/\0.*$/s, '');
      if (!url.startsWith('file://')) return null;
      try {
        return nonEmpty(decodeURIComponent(new URL(url).pathname));
      } catch {
        return null;
      }
    }
    default:
      return null;
  }
}

/** UTF-16 text up to its first NUL, or null when empty. */
function decodeUtf16(bytes: Buffer, order: 'le' | 'be'): string | null {
  const even = Buffer.from(bytes.subarray(0, bytes.length - (bytes.length % 2)));
  if (order === 'be') even.swap16();
  const text = even.toString('utf16le');
  const nul = text.indexOf('\0');
  return nonEmpty(nul < 0 ? text : text.slice(0, nul));
}

function nonEmpty(text: string): string | null {
  return text.length === 0 ? null : text;
}

function hex32(value: number): string {
  return value.toString(16).padStart(8, '0');
}
