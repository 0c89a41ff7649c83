import { crc32 } from './checksums.js';
import { formatGuid, u64 } from './read-bytes.js';

/**
 * The GPT header (UEFI 2.10 §5.3.2), in the sector at LBA 1 (primary) and at the disk's last
 * LBA (backup). Little-endian:
 *   0   8  signature "EFI PART"
 *   8   4  revision (0x00010000)
 *  12   4  header size: 92 ≤ n ≤ sector size
 *  16   4  CRC-32 of the first `header size` bytes, this field taken as zero
 *  20   4  reserved
 *  24   8  this header's LBA
 *  32   8  the other header's LBA
 *  40   8  first usable LBA
 *  48   8  last usable LBA
 *  56  16  disk GUID
 *  72   8  LBA of the partition entry array
 *  80   4  number of entries
 *  84   4  size of an entry: 128 × 2^n
 *  88   4  CRC-32 of the entry array (number × size bytes)
 */
export const GPT_SIGNATURE = 'EFI PART';
const MIN_HEADER_SIZE = 92;
/**
 * The largest entry array read (1 MiB: 8192 entries of 128 bytes; the spec's minimum is 16 KiB,
 * tools write 16 KiB): a header asking for more is refused, so a hostile count cannot make
 * Coffer allocate or read without bound.
 */
export const MAX_ENTRY_ARRAY_BYTES = 1024 * 1024;

export interface GptHeader {
  myLba: number;
  alternateLba: number;
  firstUsableLba: number;
  lastUsableLba: number;
  diskGuid: string;
  entriesLba: number;
  entryCount: number;
  entrySize: number;
  entriesCrc: number;
}

/** Parses and checks a GPT header sector; returns the header, or why it is not a valid one. */
export function parseGptHeader(sector: Buffer, expectedLba: number): GptHeader | { invalid: string } {
  if (sector.length < 512 || sector.toString('latin1', 0, 8) !== GPT_SIGNATURE) return { invalid: 'no "EFI PART" signature' };
  const headerSize = sector.readUInt32LE(12);
  if (headerSize < MIN_HEADER_SIZE || headerSize > sector.length) return { invalid: `header size ${headerSize} is out of range` };
  const copy = Buffer.from(sector.subarray(0, headerSize));
  copy.writeUInt32LE(0, 16);
  if (crc32(copy) !== sector.readUInt32LE(16)) return { invalid: 'header checksum mismatch' };
  const header: GptHeader = {
    myLba: u64(sector, 24),
    alternateLba: u64(sector, 32),
    firstUsableLba: u64(sector, 40),
    lastUsableLba: u64(sector, 48),
    diskGuid: formatGuid(sector, 56),
    entriesLba: u64(sector, 72),
    entryCount: sector.readUInt32LE(80),
    entrySize: sector.readUInt32LE(84),
    entriesCrc: sector.readUInt32LE(88),
  };
  if (header.myLba !== expectedLba) return { invalid: `header says it lies at LBA ${header.myLba}, not ${expectedLba}` };
  if (header.entrySize < 128 || header.entrySize % 128 !== 0) return { invalid: `entry size ${header.entrySize} is not a multiple of 128` };
  if (header.entryCount * header.entrySize > MAX_ENTRY_ARRAY_BYTES) {
    return { invalid: `${header.entryCount} entries of ${header.entrySize} bytes exceed the ${MAX_ENTRY_ARRAY_BYTES}-byte cap` };
  }
  return header;
}
