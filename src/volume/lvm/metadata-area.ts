import type { BlockDevice } from '../../blockdev/index.js';
import { CofferError } from '../../errors/index.js';
import { lvmChecksum } from '../checksums.js';
import { readClipped, u64 } from '../read-bytes.js';
import type { DiskArea } from './pv-label.js';

/**
 * An LVM2 metadata area (LVM's `lib/format_text/layout.h`): a circular buffer of VG metadata
 * text, starting with a 512-byte mda_header. Little-endian:
 *   0   4  LVM checksum of bytes 4..511
 *   4  16  magic " LVM2 x[5A%r0N*>"
 *  20   4  version (1)
 *  24   8  start: this area's offset in the PV (must equal where it was found)
 *  32   8  size of the area in bytes
 *  40  …   raw_locn entries, 24 bytes each, until one with offset 0; the first is the current
 *          metadata: +0 offset u64 (from the area's start), +8 size u64, +16 LVM checksum of
 *          the text u32, +20 flags u32 (bit 0: ignored)
 * The text starts at `start + offset`; when it runs past the area's end it continues right
 * after the mda_header (`start + 512`).
 */
const HEADER_SIZE = 512;
const MAGIC = ' LVM2 x[5A%r0N*>';
const RAW_LOCN_IGNORED = 1;
/** The largest metadata text read (LVM's default area is 1 MiB; VGs with thousands of LVs stay well below). */
export const MAX_METADATA_TEXT = 4 * 1024 * 1024;

/**
 * Reads the current VG metadata text of the metadata area `area` of `pv`, checked by its
 * checksum. Returns undefined when the area holds no metadata (a new PV, or one whose
 * metadata is marked ignored); throws E_FS_CORRUPT when the area is damaged.
 */
export async function readMetadataText(pv: BlockDevice, area: DiskArea): Promise<string | undefined> {
  const header = await readClipped(pv, area.offset, HEADER_SIZE);
  if (header.length < HEADER_SIZE) throw corrupt(`metadata area at ${area.offset} lies beyond the volume's end`);
  if (header.toString('latin1', 4, 20) !== MAGIC) throw corrupt(`no metadata area header at ${area.offset}`);
  if (lvmChecksum(header.subarray(4)) !== header.readUInt32LE(0)) throw corrupt('metadata area header checksum mismatch');
  const start = u64(header, 24);
  const size = u64(header, 32);
  if (start !== area.offset) throw corrupt(`metadata area header says it starts at ${start}, not ${area.offset}`);
  if (size <= HEADER_SIZE || start + size > pv.size) throw corrupt(`metadata area size ${size} is out of range`);
  const offset = u64(header, 40);
  const length = u64(header, 48);
  const checksum = header.readUInt32LE(56);
  const flags = header.readUInt32LE(60);
  if (offset === 0 || length === 0 || (flags & RAW_LOCN_IGNORED) !== 0) return undefined;
  if (offset < HEADER_SIZE || offset >= size) throw corrupt(`metadata text offset ${offset} is outside its area`);
  if (length > MAX_METADATA_TEXT || length > size - HEADER_SIZE) throw corrupt(`metadata text of ${length} bytes is too large`);
  const first = Math.min(length, size - offset);
  const pieces = [await readClipped(pv, start + offset, first)];
  if (first < length) pieces.push(await readClipped(pv, start + HEADER_SIZE, length - first));
  const text = Buffer.concat(pieces);
  if (text.length !== length) throw corrupt('metadata text lies beyond the volume\'s end');
  if (lvmChecksum(text) !== checksum) throw corrupt('metadata text checksum mismatch');
  return text.toString('utf8');
}

function corrupt(what: string): CofferError {
  return new CofferError('E_FS_CORRUPT', `lvm: ${what}`);
}
