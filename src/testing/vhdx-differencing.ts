/**
 * Differencing VHDXs for tests. qemu-img 7.2 makes fixed and dynamic VHDXs but refuses
 * differencing ones ("Backing file not supported for file format 'vhdx'"), and QEMU's reader
 * ignores parents. So a test writes a qemu-made dynamic VHDX (1 MiB blocks, created with
 * `block_state_zero=off`: by default every block of a new VHDX is ZERO, which on a differencing
 * disk hides the parent) with qemu-io, and {@link makeDifferencingVhdx} turns it into a child,
 * by the layout of Microsoft's "[MS-VHDX] Virtual Hard Disk v2 Format" (version 1.0):
 *
 * - headers at 64 KiB and 128 KiB (4 KiB each): sequence number at 8, data write GUID at 32;
 * - region tables at 192 KiB and 256 KiB: entry count at 8, 32-byte entries from 16 (GUID,
 *   file offset at 16 as a 64-bit number, length at 24);
 * - the metadata region: item count at 10, 32-byte entries from 32 (item GUID, offset within
 *   the region at 16, length at 20, flags at 24: 4 = IsRequired); the file parameters item's
 *   flags at +4 (bit 1 = HasParent); the parent locator item (a locator type GUID, key/value
 *   count at 18, 12-byte entries from 20: key offset, value offset, key length, value length,
 *   strings UTF-16LE);
 * - the BAT: 64-bit entries, state in the low 3 bits (6 = fully present, 7 = partially
 *   present), file offset in MiB from bit 20; after every chunk ratio (2^23 × sector size ÷
 *   block size) payload entries, one sector bitmap entry whose 1 MiB block has a bit per sector
 *   of the chunk: set = the child holds that sector.
 *
 * GUIDs are written and read here (not with the reader under test): mixed-endian, the first
 * three fields little-endian.
 */
import { readFile, writeFile } from 'node:fs/promises';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The two headers' file offsets. */
export const VHDX_HEADERS = [64 * KiB, 128 * KiB] as const;
/** The two region tables' file offsets. */
export const VHDX_REGION_TABLES = [192 * KiB, 256 * KiB] as const;
export const VHDX_BAT_GUID = '2DC27766-F623-4200-9D64-115E9BFD4A08';
export const VHDX_METADATA_GUID = '8B7CA206-4790-4B9A-B8FE-575F050F886E';
const FILE_PARAMETERS = 'CAA16737-FA36-4D43-B3B6-33F0AA44E76B';
const LOGICAL_SECTOR_SIZE = '8141BF1D-A96F-4709-BA47-F233A8FAAB5F';
const VIRTUAL_DISK_SIZE = '2FA54224-CD1B-4876-B211-5DBED83BF4B8';
const PARENT_LOCATOR = 'A8D35F2D-B30B-454D-ABF7-D3D84834AB0C';
const LOCATOR_TYPE = 'B04AEFB7-D19E-4A81-B789-25B8E9445913';

function guidText(b: Buffer, at: number): string {
  const hex = (n: number, digits: number) => n.toString(16).padStart(digits, '0');
  const tail = b.toString('hex', at + 8, at + 16);
  return `${hex(b.readUInt32LE(at), 8)}-${hex(b.readUInt16LE(at + 4), 4)}-${hex(b.readUInt16LE(at + 6), 4)}-${tail.slice(0, 4)}-${tail.slice(4)}`.toUpperCase();
}

function guidStored(text: string): Buffer {
  const hex = text.replace(/-/g, '');
  const out = Buffer.alloc(16);
  out.writeUInt32LE(parseInt(hex.slice(0, 8), 16), 0);
  out.writeUInt16LE(parseInt(hex.slice(8, 12), 16), 4);
  out.writeUInt16LE(parseInt(hex.slice(12, 16), 16), 6);
  Buffer.from(hex.slice(16), 'hex').copy(out, 8);
  return out;
}

/** The region with `guid` in region table 1: its entry's file offset, and the region's offset and length. */
export function vhdxRegion(b: Buffer, guid: string): { entry: number; offset: number; length: number } {
  const table = VHDX_REGION_TABLES[0];
  const count = b.readUInt32LE(table + 8);
  for (let i = 0; i < count; i++) {
    const entry = table + 16 + i * 32;
    if (guidText(b, entry) === guid) return { entry, offset: Number(b.readBigUInt64LE(entry + 16)), length: b.readUInt32LE(entry + 24) };
  }
  throw new Error(`no region ${guid}`);
}

/** The metadata item with `id`: its table entry's file offset, and the item's. */
export function vhdxMetadataItem(b: Buffer, id: string): { entry: number; at: number } {
  const meta = vhdxRegion(b, VHDX_METADATA_GUID).offset;
  const count = b.readUInt16LE(meta + 10);
  for (let i = 0; i < count; i++) {
    const entry = meta + 32 + i * 32;
    if (guidText(b, entry) === id) return { entry, at: meta + b.readUInt32LE(entry + 16) };
  }
  throw new Error(`no metadata item ${id}`);
}

/** The current header's data write GUID (the header with the larger sequence number): what a child's `parent_linkage` names. */
export function vhdxDataWriteGuid(b: Buffer): string {
  const [first, second] = VHDX_HEADERS;
  const at = b.readBigUInt64LE(first + 8) >= b.readBigUInt64LE(second + 8) ? first : second;
  return guidText(b, at + 32);
}

/**
 * Turns the dynamic VHDX at `path` (1 MiB blocks, at most one chunk: 4 GiB at 512-byte
 * sectors) into a differencing child: HasParent, a parent locator item with `pairs`
 * (`parent_linkage`, `relative_path`, `absolute_win32_path`…), and one sector bitmap block
 * appended to the file; every block present in the child becomes partially present, holding
 * exactly the sectors of `held` (byte ranges, sector-aligned). `sectorSize` is written as the
 * logical sector size.
 */
export async function makeDifferencingVhdx(path: string, pairs: Record<string, string>, held: readonly { offset: number; length: number }[], sectorSize = 512): Promise<void> {
  const b = await readFile(path);
  b.writeUInt32LE(sectorSize, vhdxMetadataItem(b, LOGICAL_SECTOR_SIZE).at);
  const meta = vhdxRegion(b, VHDX_METADATA_GUID);
  const parameters = vhdxMetadataItem(b, FILE_PARAMETERS).at + 4;
  b.writeUInt32LE(b.readUInt32LE(parameters) | 2, parameters);
  // The locator item after the last item.
  const count = b.readUInt16LE(meta.offset + 10);
  let end = 64 * KiB;
  for (let i = 0; i < count; i++) {
    const entry = meta.offset + 32 + i * 32;
    end = Math.max(end, b.readUInt32LE(entry + 16) + b.readUInt32LE(entry + 20));
  }
  const keys = Object.entries(pairs);
  const strings: Buffer[] = [];
  const locator = Buffer.alloc(20 + keys.length * 12);
  guidStored(LOCATOR_TYPE).copy(locator, 0);
  locator.writeUInt16LE(keys.length, 18);
  let at = locator.length;
  keys.forEach(([key, value], i) => {
    const k = Buffer.from(key, 'utf16le');
    const v = Buffer.from(value, 'utf16le');
    locator.writeUInt32LE(at, 20 + i * 12);
    locator.writeUInt32LE(at + k.length, 20 + i * 12 + 4);
    locator.writeUInt16LE(k.length, 20 + i * 12 + 8);
    locator.writeUInt16LE(v.length, 20 + i * 12 + 10);
    strings.push(k, v);
    at += k.length + v.length;
  });
  const item = Buffer.concat([locator, ...strings]);
  item.copy(b, meta.offset + end);
  const entry = meta.offset + 32 + count * 32;
  guidStored(PARENT_LOCATOR).copy(b, entry);
  b.writeUInt32LE(end, entry + 16);
  b.writeUInt32LE(item.length, entry + 20);
  b.writeUInt32LE(4, entry + 24); // IsRequired
  b.writeUInt16LE(count + 1, meta.offset + 10);

  // The sector bitmap block of chunk 0, appended.
  const chunkRatio = (2 ** 23 * sectorSize) / MiB;
  const blocks = Number(b.readBigUInt64LE(vhdxMetadataItem(b, VIRTUAL_DISK_SIZE).at)) / MiB;
  if (blocks > chunkRatio) throw new RangeError(`${path}: ${blocks} blocks are more than one chunk (${chunkRatio})`);
  const batAt = vhdxRegion(b, VHDX_BAT_GUID).offset;
  const bitmapAt = Math.ceil(b.length / MiB) * MiB; // blocks lie on MiB boundaries
  const bitmap = Buffer.alloc(MiB);
  const set = (s: number) => bitmap.writeUInt8(bitmap.readUInt8(s >> 3) | (1 << (s & 7)), s >> 3);
  for (const { offset, length } of held) for (let s = offset / sectorSize; s < (offset + length) / sectorSize; s++) set(s);
  b.writeBigUInt64LE((BigInt(bitmapAt / MiB) << 20n) | 6n, batAt + chunkRatio * 8);
  for (let block = 0; block < blocks; block++) {
    const e = b.readBigUInt64LE(batAt + block * 8);
    if ((e & 7n) === 6n) b.writeBigUInt64LE(e | 7n, batAt + block * 8);
  }
  await writeFile(path, Buffer.concat([b, Buffer.alloc(bitmapAt - b.length), bitmap]));
}
