/**
 * The VHDX metadata region (MS-VHDX 2.6): a 64 KiB table at the region's start naming items
 * by GUID, then the items. Little-endian.
 *
 * Table header (32 bytes), then entries:
 * ```
 * offset size field
 *      0    8 signature "metadata"
 *      8    2 reserved
 *     10    2 entry count: at most 2047
 *     12   20 reserved
 * ```
 * An entry (32 bytes):
 * ```
 *      0   16 item id (GUID)
 *     16    4 offset of the item from the region's start: at least 64 KiB (0 when length is 0)
 *     20    4 length of the item: at most 1 MiB
 *     24    4 flags: bit 0 IsUser, bit 1 IsVirtualDisk, bit 2 IsRequired (an unknown
 *              required item makes the file unreadable to this reader)
 *     28    4 reserved
 * ```
 * The items Coffer reads:
 * ```
 * File Parameters      CAA16737-FA36-4D43-B3B6-33F0AA44E76B  u32 block size (1..256 MiB, a power of
 *                                                           two), u32 flags: bit 0
 *                                                           LeaveBlockAllocated, bit 1 HasParent
 * Virtual Disk Size    2FA54224-CD1B-4876-B211-5DBED83BF4B8  u64 bytes (≤ 64 TiB, whole sectors)
 * Logical Sector Size  8141BF1D-A96F-4709-BA47-F233A8FAAB5F  u32: 512 or 4096
 * Physical Sector Size CDA348C7-445D-4471-9CC9-E9885251C556  u32: 512 or 4096
 * Page 83 Data         BECA12AB-B2E6-4523-93EF-C309E000C746  GUID: the disk's SCSI identity
 * Parent Locator       A8D35F2D-B30B-454D-ABF7-D3D84834AB0C  differencing disks only, below
 * ```
 * Parent locator: locator type GUID (16; B04AEFB7-D19E-4A81-B789-25B8E9445913 for VHDX), u16
 * reserved, u16 key/value count, then per pair u32 key offset, u32 value offset, u16 key length,
 * u16 value length (offsets from the item's start; strings UTF-16LE). Keys: parent_linkage
 * (the parent's data write GUID as "{…}"), parent_linkage2, relative_path, volume_path,
 * absolute_win32_path.
 *
 * PLEASE DO NOT MODIFY THESE MAGIC VALUES: they are the format.
 */
import { guidBytes, readGuid } from './vhdx-guid.js';
import { KiB, MiB, type ImageComplaints } from './vhdx-header.js';

export const VHDX_METADATA_TABLE_SIZE = 64 * KiB;
export const VHDX_METADATA_SIGNATURE = 'metadata';
export const METADATA_TABLE = { signature: 0, reserved: 8, entryCount: 10, reserved2: 12, entries: 32 } as const;
export const METADATA_ENTRY = { itemId: 0, offset: 16, length: 20, flags: 24, reserved: 28, size: 32 } as const;
const MAX_ENTRIES = 2047;
const MAX_ITEM_LENGTH = MiB;
const FLAG_REQUIRED = 4;
if (METADATA_TABLE.entries + MAX_ENTRIES * METADATA_ENTRY.size > VHDX_METADATA_TABLE_SIZE) throw new Error('VHDX metadata table layout exceeds 64 KiB');

export const ITEM = {
  fileParameters: 'CAA16737-FA36-4D43-B3B6-33F0AA44E76B',
  virtualDiskSize: '2FA54224-CD1B-4876-B211-5DBED83BF4B8',
  logicalSectorSize: '8141BF1D-A96F-4709-BA47-F233A8FAAB5F',
  physicalSectorSize: 'CDA348C7-445D-4471-9CC9-E9885251C556',
  page83Data: 'BECA12AB-B2E6-4523-93EF-C309E000C746',
  parentLocator: 'A8D35F2D-B30B-454D-ABF7-D3D84834AB0C',
} as const;
export const VHDX_PARENT_LOCATOR_TYPE = 'B04AEFB7-D19E-4A81-B789-25B8E9445913';
/** 64 TiB: the format's largest virtual size. */
export const VHDX_MAX_SIZE = 64 * 1024 * 1024 * MiB;
const MIN_BLOCK = MiB;
const MAX_BLOCK = 256 * MiB;

/** Where an item lies inside the metadata region. */
export interface MetadataItemRef {
  offset: number;
  length: number;
}

/** The checked metadata a reader needs. */
export interface VhdxMetadata {
  blockSize: number;
  leaveBlocksAllocated: boolean;
  hasParent: boolean;
  virtualSize: number;
  logicalSectorSize: 512 | 4096;
  physicalSectorSize: 512 | 4096;
  page83Data: string | null;
  /** The parent locator's key/value pairs; null unless HasParent. */
  parentLocator: Map<string, string> | null;
}

/**
 * Parses the metadata table: the known items' places inside the region of `regionLength`
 * bytes. An unknown required item is `E_UNSUPPORTED_FORMAT`; items outside the region,
 * overlapping the table or longer than 1 MiB are `E_IMAGE_INVALID`.
 */
export function parseVhdxMetadataTable(bytes: Uint8Array, options: { regionLength: number; image: ImageComplaints }): Map<string, MetadataItemRef> {
  const { regionLength, image } = options;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.length !== VHDX_METADATA_TABLE_SIZE || b.toString('latin1', 0, 8) !== VHDX_METADATA_SIGNATURE) {
    throw image.invalid(`VHDX metadata table lacks its "${VHDX_METADATA_SIGNATURE}" signature`);
  }
  const count = b.readUInt16LE(METADATA_TABLE.entryCount);
  if (count > MAX_ENTRIES) throw image.invalid(`VHDX metadata table has ${count} entries, more than the ${MAX_ENTRIES} it can hold`);
  const known = new Set<string>(Object.values(ITEM));
  const items = new Map<string, MetadataItemRef>();
  for (let i = 0; i < count; i++) {
    const at = METADATA_TABLE.entries + i * METADATA_ENTRY.size;
    const id = readGuid(b, at + METADATA_ENTRY.itemId);
    const offset = b.readUInt32LE(at + METADATA_ENTRY.offset);
    const length = b.readUInt32LE(at + METADATA_ENTRY.length);
    const flags = b.readUInt32LE(at + METADATA_ENTRY.flags);
    if (!known.has(id)) {
      if ((flags & FLAG_REQUIRED) !== 0) throw image.unsupported(`the required VHDX metadata item ${id}`);
      continue;
    }
    if (length === 0) continue;
    if (length > MAX_ITEM_LENGTH || offset < VHDX_METADATA_TABLE_SIZE || offset + length > regionLength) {
      throw image.invalid(`VHDX metadata item ${id} (${length} bytes at ${offset}) lies outside its region (${regionLength} bytes) or over the table`);
    }
    if (items.has(id)) throw image.invalid(`VHDX metadata lists item ${id} twice`);
    items.set(id, { offset, length });
  }
  return items;
}

/**
 * Parses and checks the known items, given their bytes by item id. Missing required items,
 * a block size that is not a power of two in 1..256 MiB, a sector size other than 512 or
 * 4096, a virtual size over 64 TiB or not whole sectors, and a broken parent locator are
 * `E_IMAGE_INVALID`.
 */
export function parseVhdxMetadata(items: ReadonlyMap<string, Uint8Array>, image: ImageComplaints): VhdxMetadata {
  const item = (id: string, name: string, minLength: number): Buffer => {
    const bytes = items.get(id);
    if (bytes === undefined) throw image.invalid(`VHDX metadata lacks the ${name} item`);
    if (bytes.length < minLength) throw image.invalid(`VHDX ${name} item is ${bytes.length} bytes, needs ${minLength}`);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  };
  const parameters = item(ITEM.fileParameters, 'file parameters', 8);
  const blockSize = parameters.readUInt32LE(0);
  const flags = parameters.readUInt32LE(4);
  if (blockSize < MIN_BLOCK || blockSize > MAX_BLOCK || (blockSize & (blockSize - 1)) !== 0) {
    throw image.invalid(`VHDX block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`);
  }
  const sectorSize = (id: string, name: string): 512 | 4096 => {
    const value = item(id, name, 4).readUInt32LE(0);
    if (value !== 512 && value !== 4096) throw image.invalid(`VHDX ${name} ${value} is neither 512 nor 4096`);
    return value;
  };
  const logicalSectorSize = sectorSize(ITEM.logicalSectorSize, 'logical sector size');
  const physicalSectorSize = sectorSize(ITEM.physicalSectorSize, 'physical sector size');
  const rawSize = item(ITEM.virtualDiskSize, 'virtual disk size', 8).readBigUInt64LE(0);
  if (rawSize > BigInt(VHDX_MAX_SIZE)) throw image.invalid(`VHDX virtual size ${rawSize} exceeds the format's limit of 64 TiB`);
  const virtualSize = Number(rawSize);
  if (virtualSize % logicalSectorSize !== 0) throw image.invalid(`VHDX virtual size ${virtualSize} is not a whole number of ${logicalSectorSize}-byte sectors`);
  const page83 = items.get(ITEM.page83Data);
  const hasParent = (flags & 2) !== 0;
  let parentLocator: Map<string, string> | null = null;
  if (hasParent) {
    const locator = items.get(ITEM.parentLocator);
    if (locator === undefined) throw image.invalid('VHDX differencing disk has no parent locator');
    parentLocator = parseParentLocator(locator, image);
  }
  return {
    blockSize,
    leaveBlocksAllocated: (flags & 1) !== 0,
    hasParent,
    virtualSize,
    logicalSectorSize,
    physicalSectorSize,
    page83Data: page83 !== undefined && page83.length >= 16 ? readGuid(page83, 0) : null,
    parentLocator,
  };
}

/** The parent locator's key/value pairs, each bounded by the item. */
export function parseParentLocator(bytes: Uint8Array, image: ImageComplaints): Map<string, string> {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.length < 20) throw image.invalid(`VHDX parent locator is ${b.length} bytes, too short for its header`);
  const type = readGuid(b, 0);
  if (type !== VHDX_PARENT_LOCATOR_TYPE) throw image.unsupported(`VHDX parent locator type ${type}`);
  const count = b.readUInt16LE(18);
  if (20 + count * 12 > b.length) throw image.invalid(`VHDX parent locator has ${count} entries, more than its ${b.length} bytes hold`);
  const out = new Map<string, string>();
  const text = (offset: number, length: number, what: string): string => {
    if (offset + length > b.length || length % 2 !== 0) throw image.invalid(`VHDX parent locator ${what} (${length} bytes at ${offset}) lies outside the locator or is not UTF-16`);
    return b.toString('utf16le', offset, offset + length);
  };
  for (let i = 0; i < count; i++) {
    const at = 20 + i * 12;
    const key = text(b.readUInt32LE(at), b.readUInt16LE(at + 8), `key ${i}`);
    const value = text(b.readUInt32LE(at + 4), b.readUInt16LE(at + 10), `value ${i}`);
    if (out.has(key)) throw image.invalid(`VHDX parent locator has key ${JSON.stringify(key)} twice`);
    out.set(key, value);
  }
  return out;
}

/** The metadata of a new disk that is not differencing: what {@link encodeVhdxMetadata} writes. */
export type NewVhdxMetadata = Pick<VhdxMetadata, 'blockSize' | 'leaveBlocksAllocated' | 'virtualSize' | 'logicalSectorSize' | 'physicalSectorSize'> & {
  page83Data: string;
};

/** Entry flag bit 1: the item describes the virtual disk (File Parameters describe the file). */
const FLAG_VIRTUAL_DISK = 2;

/**
 * The start of a metadata region for a disk that is not differencing: the 64 KiB table, then
 * the five items MS-VHDX requires, in the order and with the flags qemu-img and Hyper-V write
 * (File Parameters IsRequired; the other four IsRequired and IsVirtualDisk). Returns the table
 * and items (64 KiB + 40 bytes); the rest of the region is zeros. Throws `RangeError` for values
 * {@link parseVhdxMetadata} would refuse.
 */
export function encodeVhdxMetadata(metadata: NewVhdxMetadata): Buffer {
  const { blockSize, virtualSize, logicalSectorSize, physicalSectorSize } = metadata;
  if (blockSize < MIN_BLOCK || blockSize > MAX_BLOCK || (blockSize & (blockSize - 1)) !== 0) throw new RangeError(`VHDX block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`);
  if (virtualSize > VHDX_MAX_SIZE || virtualSize % logicalSectorSize !== 0) throw new RangeError(`VHDX virtual size ${virtualSize} is over 64 TiB or not whole ${logicalSectorSize}-byte sectors`);
  const parameters = Buffer.alloc(8);
  parameters.writeUInt32LE(blockSize, 0);
  parameters.writeUInt32LE(metadata.leaveBlocksAllocated ? 1 : 0, 4);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(virtualSize), 0);
  const u32 = (value: number) => {
    const out = Buffer.alloc(4);
    out.writeUInt32LE(value, 0);
    return out;
  };
  const items: [string, Buffer, number][] = [
    [ITEM.fileParameters, parameters, FLAG_REQUIRED],
    [ITEM.virtualDiskSize, size, FLAG_REQUIRED | FLAG_VIRTUAL_DISK],
    [ITEM.page83Data, guidBytes(metadata.page83Data), FLAG_REQUIRED | FLAG_VIRTUAL_DISK],
    [ITEM.logicalSectorSize, u32(logicalSectorSize), FLAG_REQUIRED | FLAG_VIRTUAL_DISK],
    [ITEM.physicalSectorSize, u32(physicalSectorSize), FLAG_REQUIRED | FLAG_VIRTUAL_DISK],
  ];
  const table = Buffer.alloc(VHDX_METADATA_TABLE_SIZE);
  table.write(VHDX_METADATA_SIGNATURE, METADATA_TABLE.signature, 'latin1');
  table.writeUInt16LE(items.length, METADATA_TABLE.entryCount);
  let offset = VHDX_METADATA_TABLE_SIZE;
  items.forEach(([id, bytes, flags], i) => {
    const at = METADATA_TABLE.entries + i * METADATA_ENTRY.size;
    guidBytes(id).copy(table, at + METADATA_ENTRY.itemId);
    table.writeUInt32LE(offset, at + METADATA_ENTRY.offset);
    table.writeUInt32LE(bytes.length, at + METADATA_ENTRY.length);
    table.writeUInt32LE(flags, at + METADATA_ENTRY.flags);
    offset += bytes.length;
  });
  return Buffer.concat([table, ...items.map(([, bytes]) => bytes)]);
}
