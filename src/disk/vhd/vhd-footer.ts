/**
 * The VHD hard disk footer (Microsoft's "Virtual Hard Disk Image Format Specification" 1.0;
 * QEMU calls the format "vpc"). 512 bytes, big-endian. Every VHD ends with it; dynamic and
 * differencing disks also keep a copy in their first 512 bytes.
 *
 * ```
 * offset size field
 *      0    8 cookie "conectix"
 *      8    4 features: bit 0 temporary, bit 1 reserved (always set)
 *     12    4 file format version: 0x00010000
 *     16    8 data offset: the dynamic disk header's offset; all ones for fixed disks
 *     24    4 time stamp: seconds since 2000-01-01T00:00:00Z
 *     28    4 creator application: "vpc ", "win " (Hyper-V), "qemu", "qem2" (qemu-img
 *              with force_size), "d2v " (Disk2vhd), "tap\0" (Xen) …
 *     32    4 creator version
 *     36    4 creator host OS: "Wi2k", "Mac " …
 *     40    8 original size in bytes (at creation)
 *     48    8 current size in bytes: the virtual size
 *     56    2 disk geometry: cylinders
 *     58    1 disk geometry: heads
 *     59    1 disk geometry: sectors per track
 *     60    4 disk type: 2 fixed, 3 dynamic, 4 differencing
 *     64    4 checksum: one's complement of the sum of all 512 bytes, this field taken as 0
 *     68   16 unique id (a UUID; a differencing disk names its parent by it)
 *     84    1 saved state: 1 when the VM was saved with this disk attached
 *     85  427 reserved (zeros)
 * ```
 *
 * Virtual size: Coffer uses the current size. QEMU uses cylinders × heads × sectors × 512
 * instead unless the creator is "win ", "qem2", "d2v ", "CTXS" or "tap\0" or the geometry is
 * the maximum 65535/16/255; images from qemu-img and Hyper-V have both equal, only Virtual PC's
 * own images may differ (and then the current size holds the whole disk).
 *
 * PLEASE DO NOT MODIFY THESE MAGIC VALUES: they are the format.
 */
import type { ImageFile } from '../image-file.js';

export const VHD_FOOTER_SIZE = 512;
export const VHD_FOOTER_COOKIE = 'conectix';
/** The time stamps' epoch, 2000-01-01T00:00:00Z, in Unix seconds. */
export const VHD_EPOCH_UNIX_SECONDS = 946_684_800;
/** The largest virtual size the format allows (and QEMU opens): 2040 GiB. */
export const VHD_MAX_SIZE = 0xff00_0000 * 512;
export const VHD_SECTOR = 512;

export const FOOTER = {
  cookie: 0,
  features: 8,
  version: 12,
  dataOffset: 16,
  timestamp: 24,
  creatorApp: 28,
  creatorVersion: 32,
  creatorOs: 36,
  originalSize: 40,
  currentSize: 48,
  cylinders: 56,
  heads: 58,
  sectorsPerTrack: 59,
  diskType: 60,
  checksum: 64,
  uniqueId: 68,
  savedState: 84,
  reserved: 85,
} as const;
if (FOOTER.reserved + 427 !== VHD_FOOTER_SIZE) throw new Error('VHD footer layout does not add up to 512 bytes');

export const DISK_TYPE_FIXED = 2;
export const DISK_TYPE_DYNAMIC = 3;
export const DISK_TYPE_DIFFERENCING = 4;
const TYPE_NAMES = { [DISK_TYPE_FIXED]: 'fixed', [DISK_TYPE_DYNAMIC]: 'dynamic', [DISK_TYPE_DIFFERENCING]: 'differencing' } as const;
export type VhdDiskType = (typeof TYPE_NAMES)[keyof typeof TYPE_NAMES];

const SUPPORTED_MAJOR_VERSION = 1;

/** How parsers report problems: the image's own error makers (they name the image). */
export type ImageComplaints = Pick<ImageFile, 'invalid' | 'unsupported'>;

/** A parsed, checked footer. */
export interface VhdFooter {
  diskType: VhdDiskType;
  features: number;
  version: number;
  /** Offset of the dynamic disk header; null for fixed disks. */
  dataOffset: number | null;
  /** Seconds since {@link VHD_EPOCH_UNIX_SECONDS}. */
  timestamp: number;
  creatorApp: string;
  creatorVersion: number;
  creatorOs: string;
  originalSize: number;
  /** The virtual size in bytes, a multiple of 512, at most {@link VHD_MAX_SIZE}. */
  currentSize: number;
  geometry: { cylinders: number; heads: number; sectorsPerTrack: number };
  checksum: number;
  /** The unique id as 32 lowercase hex digits. */
  uniqueId: string;
  savedState: boolean;
}

/**
 * One's complement of the byte sum of `bytes`, the 4 bytes at `checksumAt` counted as zero
 * (the footer's and the dynamic header's checksum).
 */
export function vhdChecksum(bytes: Uint8Array, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += bytes[i] as number;
  return ~sum >>> 0;
}

/** True when `bytes` starts with the footer cookie. */
export function hasFooterCookie(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && Buffer.from(bytes.buffer, bytes.byteOffset, 8).toString('latin1') === VHD_FOOTER_COOKIE;
}

/** The disk type field of a footer, unchecked (to choose which copy of the footer to trust). */
export function peekDiskType(bytes: Uint8Array): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).readUInt32BE(FOOTER.diskType);
}

/**
 * Parses and checks a 512-byte footer: cookie, checksum, version, type, sizes.
 * Throws `E_IMAGE_INVALID` (or `E_UNSUPPORTED_FORMAT` for an unknown format version) naming
 * the image.
 */
export function parseVhdFooter(bytes: Uint8Array, image: ImageComplaints): VhdFooter {
  if (bytes.length !== VHD_FOOTER_SIZE) throw image.invalid(`VHD footer is ${bytes.length} bytes, not ${VHD_FOOTER_SIZE}`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (!hasFooterCookie(b)) throw image.invalid(`VHD footer lacks its "${VHD_FOOTER_COOKIE}" cookie`);
  const checksum = b.readUInt32BE(FOOTER.checksum);
  const computed = vhdChecksum(b, FOOTER.checksum);
  if (checksum !== computed) {
    throw image.invalid(`VHD footer checksum is 0x${hex32(checksum)} but its bytes sum to 0x${hex32(computed)}: the footer is damaged`);
  }
  const version = b.readUInt32BE(FOOTER.version);
  if (version >>> 16 !== SUPPORTED_MAJOR_VERSION) throw image.unsupported(`VHD file format version 0x${hex32(version)}`);
  const typeCode = b.readUInt32BE(FOOTER.diskType);
  const diskType = TYPE_NAMES[typeCode as keyof typeof TYPE_NAMES] as VhdDiskType | undefined;
  if (diskType === undefined) throw image.invalid(`VHD disk type ${typeCode} is none of 2 (fixed), 3 (dynamic), 4 (differencing)`);

  const u64 = (at: number, name: string): number => {
    const value = b.readBigUInt64BE(at);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw image.invalid(`VHD footer ${name} ${value} is out of range`);
    return Number(value);
  };
  const currentSize = u64(FOOTER.currentSize, 'current size');
  if (currentSize % VHD_SECTOR !== 0) throw image.invalid(`VHD virtual size ${currentSize} is not a whole number of 512-byte sectors`);
  if (currentSize > VHD_MAX_SIZE) throw image.invalid(`VHD virtual size ${currentSize} exceeds the format's limit of 2040 GiB`);

  let dataOffset: number | null = null;
  if (diskType !== 'fixed') {
    const raw = b.readBigUInt64BE(FOOTER.dataOffset);
    if (raw > BigInt(Number.MAX_SAFE_INTEGER)) throw image.invalid(`VHD ${diskType} disk has no dynamic header (data offset 0x${raw.toString(16)})`);
    dataOffset = Number(raw);
  }

  return {
    diskType,
    features: b.readUInt32BE(FOOTER.features),
    version,
    dataOffset,
    timestamp: b.readUInt32BE(FOOTER.timestamp),
    creatorApp: b.toString('latin1', FOOTER.creatorApp, FOOTER.creatorApp + 4),
    creatorVersion: b.readUInt32BE(FOOTER.creatorVersion),
    creatorOs: b.toString('latin1', FOOTER.creatorOs, FOOTER.creatorOs + 4),
    originalSize: Number(b.readBigUInt64BE(FOOTER.originalSize)), // informative only: never used as an offset
    currentSize,
    geometry: { cylinders: b.readUInt16BE(FOOTER.cylinders), heads: b[FOOTER.heads] as number, sectorsPerTrack: b[FOOTER.sectorsPerTrack] as number },
    checksum,
    uniqueId: b.toString('hex', FOOTER.uniqueId, FOOTER.uniqueId + 16),
    savedState: b[FOOTER.savedState] !== 0,
  };
}

/**
 * Encodes `footer` as the 512 bytes of the layout above, computing its checksum (the
 * inverse of {@link parseVhdFooter}; `dataOffset` null is written as all ones).
 */
export function encodeVhdFooter(footer: Omit<VhdFooter, 'checksum'>): Buffer {
  const b = Buffer.alloc(VHD_FOOTER_SIZE);
  const typeCode = Number(Object.entries(TYPE_NAMES).find(([, name]) => name === footer.diskType)?.[0]);
  b.write(VHD_FOOTER_COOKIE, FOOTER.cookie, 'latin1');
  b.writeUInt32BE(footer.features, FOOTER.features);
  b.writeUInt32BE(footer.version, FOOTER.version);
  b.writeBigUInt64BE(footer.dataOffset === null ? 0xffff_ffff_ffff_ffffn : BigInt(footer.dataOffset), FOOTER.dataOffset);
  b.writeUInt32BE(footer.timestamp, FOOTER.timestamp);
  b.write(footer.creatorApp.padEnd(4, '\0').slice(0, 4), FOOTER.creatorApp, 'latin1');
  b.writeUInt32BE(footer.creatorVersion, FOOTER.creatorVersion);
  b.write(footer.creatorOs.padEnd(4, '\0').slice(0, 4), FOOTER.creatorOs, 'latin1');
  b.writeBigUInt64BE(BigInt(footer.originalSize), FOOTER.originalSize);
  b.writeBigUInt64BE(BigInt(footer.currentSize), FOOTER.currentSize);
  b.writeUInt16BE(footer.geometry.cylinders, FOOTER.cylinders);
  b[FOOTER.heads] = footer.geometry.heads;
  b[FOOTER.sectorsPerTrack] = footer.geometry.sectorsPerTrack;
  b.writeUInt32BE(typeCode, FOOTER.diskType);
  b.write(footer.uniqueId, FOOTER.uniqueId, 16, 'hex');
  b[FOOTER.savedState] = footer.savedState ? 1 : 0;
  b.writeUInt32BE(vhdChecksum(b, FOOTER.checksum), FOOTER.checksum);
  return b;
}

/** A 32-hex-digit id as the usual 8-4-4-4-12 UUID text, for messages. */
export function formatUniqueId(hex: string): string {
  return hex.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
}

function hex32(value: number): string {
  return value.toString(16).padStart(8, '0');
}
