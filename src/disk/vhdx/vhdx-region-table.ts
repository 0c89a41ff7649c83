/**
 * The VHDX region table (MS-VHDX 2.2.3): where the BAT and the metadata lie. Two identical
 * copies at 192 KiB and 256 KiB, 64 KiB each, little-endian.
 *
 * ```
 * offset size field
 *      0    4 signature "regi"
 *      4    4 checksum: CRC-32C of the 64 KiB with this field zeroed
 *      8    4 entry count: at most 2047
 *     12    4 reserved
 *     16   32 × entry count: entries
 * ```
 * An entry (32 bytes):
 * ```
 *      0   16 GUID: what the region is (BAT or metadata; others are extensions)
 *     16    8 file offset: a multiple of 1 MiB, at least 1 MiB
 *     24    4 length: a multiple of 1 MiB
 *     28    4 bit 0 required: a reader that does not know the region must refuse the file
 * ```
 *
 * PLEASE DO NOT MODIFY THESE MAGIC VALUES: they are the format.
 */
import { crc32c } from './crc32c.js';
import { guidBytes, readGuid } from './vhdx-guid.js';
import { hex32, KiB, MiB, VHDX_HEADER_SECTION_SIZE, type ImageComplaints } from './vhdx-header.js';

export const VHDX_REGION_TABLE_OFFSETS = [192 * KiB, 256 * KiB] as const;
export const VHDX_REGION_TABLE_SIZE = 64 * KiB;
export const VHDX_REGION_SIGNATURE = 'regi';
export const REGION_TABLE = { signature: 0, checksum: 4, entryCount: 8, reserved: 12, entries: 16 } as const;
export const REGION_ENTRY = { guid: 0, fileOffset: 16, length: 24, required: 28, size: 32 } as const;
const MAX_ENTRIES = 2047;
/** Bit 0 of an entry's flags: a reader that does not know the region must refuse the file. */
const REGION_REQUIRED = 1;
if (REGION_TABLE.entries + MAX_ENTRIES * REGION_ENTRY.size > VHDX_REGION_TABLE_SIZE) throw new Error('VHDX region table layout exceeds 64 KiB');

export const BAT_REGION_GUID = '2DC27766-F623-4200-9D64-115E9BFD4A08';
export const METADATA_REGION_GUID = '8B7CA206-4790-4B9A-B8FE-575F050F886E';

/** A region of the file. */
export interface VhdxRegion {
  fileOffset: number;
  length: number;
}

/** The regions Coffer reads, checked to lie inside the file, past the headers, apart. */
export interface VhdxRegions {
  bat: VhdxRegion;
  metadata: VhdxRegion;
}

/**
 * Parses one region table copy; returns a reason when the copy is damaged (bad signature or
 * checksum) so the reader can fall back to the other. Throws `E_IMAGE_INVALID` /
 * `E_UNSUPPORTED_FORMAT` for a whole table whose content is wrong: regions misaligned, inside
 * the first MiB, past the end of the file (`fileSize`), overlapping, missing, or an unknown
 * required region.
 */
export function parseVhdxRegionTable(bytes: Uint8Array, options: { fileSize: number; image: ImageComplaints }): VhdxRegions | string {
  const { fileSize, image } = options;
  if (bytes.length !== VHDX_REGION_TABLE_SIZE) return `it is ${bytes.length} bytes, not ${VHDX_REGION_TABLE_SIZE}`;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.toString('latin1', 0, 4) !== VHDX_REGION_SIGNATURE) return `it lacks its "${VHDX_REGION_SIGNATURE}" signature`;
  const checksum = b.readUInt32LE(REGION_TABLE.checksum);
  const computed = crc32c(b, REGION_TABLE.checksum);
  if (checksum !== computed) return `its checksum is 0x${hex32(checksum)} but its CRC-32C is 0x${hex32(computed)}`;
  const count = b.readUInt32LE(REGION_TABLE.entryCount);
  if (count > MAX_ENTRIES) throw image.invalid(`VHDX region table has ${count} entries, more than the ${MAX_ENTRIES} it can hold`);

  const found = new Map<string, VhdxRegion>();
  const all: (VhdxRegion & { guid: string })[] = [];
  for (let i = 0; i < count; i++) {
    const at = REGION_TABLE.entries + i * REGION_ENTRY.size;
    const guid = readGuid(b, at + REGION_ENTRY.guid);
    const offset = b.readBigUInt64LE(at + REGION_ENTRY.fileOffset);
    const length = b.readUInt32LE(at + REGION_ENTRY.length);
    const required = (b.readUInt32LE(at + REGION_ENTRY.required) & 1) === 1;
    if (offset > BigInt(Number.MAX_SAFE_INTEGER) || offset % BigInt(MiB) !== 0n || length % MiB !== 0 || length === 0) {
      throw image.invalid(`VHDX region ${guid} (${length} bytes at ${offset}) is empty or not aligned to 1 MiB`);
    }
    const region = { guid, fileOffset: Number(offset), length };
    if (region.fileOffset < VHDX_HEADER_SECTION_SIZE) throw image.invalid(`VHDX region ${guid} at ${region.fileOffset} overlaps the headers (the first MiB)`);
    if (region.fileOffset + length > fileSize) {
      throw image.invalid(`VHDX region ${guid} (${length} bytes at ${region.fileOffset}) runs past the end of the file (${fileSize} bytes)`, region.fileOffset);
    }
    for (const other of all) {
      if (region.fileOffset < other.fileOffset + other.length && other.fileOffset < region.fileOffset + length) {
        throw image.invalid(`VHDX regions ${other.guid} and ${guid} overlap`);
      }
    }
    all.push(region);
    if (guid === BAT_REGION_GUID || guid === METADATA_REGION_GUID) {
      if (found.has(guid)) throw image.invalid(`VHDX region table lists region ${guid} twice`);
      found.set(guid, { fileOffset: region.fileOffset, length });
    } else if (required) {
      throw image.unsupported(`the required VHDX region ${guid}`);
    }
  }
  const bat = found.get(BAT_REGION_GUID);
  const metadata = found.get(METADATA_REGION_GUID);
  if (bat === undefined) throw image.invalid('VHDX region table has no BAT region');
  if (metadata === undefined) throw image.invalid('VHDX region table has no metadata region');
  return { bat, metadata };
}

/**
 * One 64 KiB region table copy with its checksum, listing the BAT and the metadata regions,
 * both required (the inverse of {@link parseVhdxRegionTable} for the regions Coffer knows).
 * Throws `RangeError` for a region not aligned to 1 MiB or inside the first MiB.
 */
export function encodeVhdxRegionTable(regions: VhdxRegions): Buffer {
  const out = Buffer.alloc(VHDX_REGION_TABLE_SIZE);
  out.write(VHDX_REGION_SIGNATURE, REGION_TABLE.signature, 'latin1');
  const entries: [string, VhdxRegion][] = [
    [BAT_REGION_GUID, regions.bat],
    [METADATA_REGION_GUID, regions.metadata],
  ];
  out.writeUInt32LE(entries.length, REGION_TABLE.entryCount);
  entries.forEach(([guid, region], i) => {
    if (region.fileOffset % MiB !== 0 || region.length % MiB !== 0 || region.length === 0 || region.fileOffset < VHDX_HEADER_SECTION_SIZE) {
      throw new RangeError(`VHDX region ${guid} (${region.length} bytes at ${region.fileOffset}) must be 1 MiB-aligned, non-empty and past the first MiB`);
    }
    const at = REGION_TABLE.entries + i * REGION_ENTRY.size;
    guidBytes(guid).copy(out, at + REGION_ENTRY.guid);
    out.writeBigUInt64LE(BigInt(region.fileOffset), at + REGION_ENTRY.fileOffset);
    out.writeUInt32LE(region.length, at + REGION_ENTRY.length);
    out.writeUInt32LE(REGION_REQUIRED, at + REGION_ENTRY.required);
  });
  out.writeUInt32LE(crc32c(out, REGION_TABLE.checksum), REGION_TABLE.checksum);
  return out;
}
