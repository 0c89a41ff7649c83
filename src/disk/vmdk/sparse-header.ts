/**
 * The header of a VMDK hosted sparse extent (`SparseExtentHeader`, VMware Virtual Disk
 * Format 1.1 §"Hosted Sparse Extents" and 5.0 for the zeroed-grain flag). One 512-byte
 * sector at the start of the extent file, little-endian; sizes and offsets are in 512-byte
 * sectors.
 *
 * ```
 * offset size field
 *      0    4 magic "KDMV"
 *      4    4 version: 1; 2 with zeroed-grain entries; 3 for stream-optimized extents and
 *              changed-block tracking (read like 1)
 *      8    4 flags: bit 0 newline test valid, 1 redundant grain table, 2 zeroed-grain
 *              entries (grain table entry 1 reads as zeros), 16 compressed grains,
 *              17 grain and metadata markers
 *     12    8 capacity: sectors of data this extent holds
 *     20    8 grainSize: sectors per grain (128 = 64 KiB in practice)
 *     28    8 descriptorOffset: sector of the embedded descriptor, 0 for none
 *     36    8 descriptorSize: sectors of the embedded descriptor
 *     44    4 numGTEsPerGT: entries per grain table (512)
 *     48    8 rgdOffset: sector of the redundant grain directory
 *     56    8 gdOffset: sector of the grain directory; 0xFFFFFFFFFFFFFFFF in a
 *              stream-optimized extent whose directory is written last (see the footer)
 *     64    8 overHead: sectors of metadata before the first grain
 *     72    1 uncleanShutdown
 *     73    4 newline test characters '\n' ' ' '\r' '\n' (a file transferred as text
 *              mangles them)
 *     77    2 compressAlgorithm: 0 none, 1 deflate (zlib streams, RFC 1950)
 *     79  433 padding
 * ```
 * The grain directory has ceil(capacity / (numGTEsPerGT × grainSize)) u32 entries, each the
 * sector of a grain table (0: none, every grain it covers is unallocated); a grain table has
 * numGTEsPerGT u32 entries, each the sector of a grain (0: unallocated, 1: a zeroed grain
 * when flag bit 2 is set).
 *
 * Bounds (QEMU's block/vmdk.c in brackets): version ≤ 3 [same]; numGTEsPerGT 1..512 [same];
 * grainSize a power of two from 8 sectors (4 KiB, the spec's minimum) to 4096 sectors
 * (2 MiB) [QEMU: 1..2^21 sectors, no power of two needed; qemu-img writes 128]; capacity
 * 1 sector .. 64 TiB; an embedded descriptor of at most 1 MiB [QEMU reads at most 1 MiB].
 */
import type { ImageFile } from '../image-file.js';

/** The first four bytes of every sparse extent: PLEASE DO NOT CHANGE. */
export const SPARSE_MAGIC = 'KDMV';
/** The header is one sector. */
export const SPARSE_HEADER_SIZE = 512;
/** Sizes and offsets in the header, descriptor and grain tables count 512-byte sectors. */
export const SECTOR = 512;

const OFF_MAGIC = 0;
const OFF_VERSION = 4;
const OFF_FLAGS = 8;
const OFF_CAPACITY = 12;
const OFF_GRAIN_SIZE = 20;
const OFF_DESCRIPTOR_OFFSET = 28;
const OFF_DESCRIPTOR_SIZE = 36;
const OFF_GTES_PER_GT = 44;
const OFF_RGD_OFFSET = 48;
const OFF_GD_OFFSET = 56;
const OFF_OVERHEAD = 64;
const OFF_UNCLEAN_SHUTDOWN = 72;
const OFF_NEWLINE_TEST = 73;
const OFF_COMPRESS_ALGORITHM = 77;
/** Where the fields end; the rest of the sector is padding. */
const FIELDS_END = 79;

const FLAG_NEWLINE_TEST = 1 << 0;
const FLAG_REDUNDANT_GT = 1 << 1;
const FLAG_ZEROED_GRAIN = 1 << 2;
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;

const NEWLINE_TEST = '\n \r\n';
const COMPRESS_NONE = 0;
const COMPRESS_DEFLATE = 1;
const GD_AT_END = 0xffff_ffff_ffff_ffffn;

const MAX_VERSION = 3;
const MAX_GTES_PER_GT = 512;
const MIN_GRAIN_SECTORS = 8;
const MAX_GRAIN_SECTORS = 4096;
/** 64 TiB in sectors. */
export const MAX_CAPACITY_SECTORS = 2 ** 37;
/** 1 MiB in sectors. */
export const MAX_DESCRIPTOR_SECTORS = 2048;

if (FIELDS_END > SPARSE_HEADER_SIZE || OFF_COMPRESS_ALGORITHM + 2 !== FIELDS_END) throw new Error('sparse header layout is inconsistent');

/** A parsed, bounded sparse extent header. */
export interface SparseHeader {
  version: number;
  flags: number;
  /** Sectors of data in the extent, 1 .. 2^37. */
  capacity: number;
  /** Sectors per grain, a power of two 8 .. 4096. */
  grainSize: number;
  /** Sector of the embedded descriptor, 0 for none. */
  descriptorOffset: number;
  /** Sectors of the embedded descriptor, at most 2048. */
  descriptorSize: number;
  /** Entries per grain table, 1 .. 512. */
  gtesPerGt: number;
  /** Sector of the redundant grain directory, 0 when the flag says there is none. */
  rgdOffset: number;
  /** Sector of the grain directory, or 'footer' when only the stream footer knows it. */
  gdOffset: number | 'footer';
  overHead: number;
  uncleanShutdown: boolean;
  /** Grain table entry 1 means a grain of zeros (flag bit 2). */
  zeroedGrains: boolean;
  /** Grains are zlib streams behind grain markers (compressAlgorithm 1). */
  compressed: boolean;
  /** Grains and metadata are preceded by markers (flag bit 17). */
  markers: boolean;
}

/** What a parser needs to say that an image is bad, narrowed from ImageFile. */
export type Complaints = Pick<ImageFile, 'invalid' | 'unsupported'>;

/** True when `bytes` starts with the sparse extent magic. */
export function isSparseHeader(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && Buffer.from(bytes.buffer, bytes.byteOffset, 4).toString('latin1') === SPARSE_MAGIC;
}

/**
 * Parses and bounds the header in `bytes` (at least 512 bytes); `where` names the copy
 * ("header", "footer") in errors. Throws `E_IMAGE_INVALID` for values that contradict the
 * format and `E_UNSUPPORTED_FORMAT` for versions and algorithms Coffer does not read.
 */
export function parseSparseHeader(bytes: Uint8Array, image: Complaints, where = 'header'): SparseHeader {
  if (bytes.length < SPARSE_HEADER_SIZE) throw image.invalid(`the sparse extent ${where} is truncated (${bytes.length} bytes)`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, SPARSE_HEADER_SIZE);
  if (!isSparseHeader(b)) throw image.invalid(`the sparse extent ${where} has no KDMV magic`);
  const u64 = (offset: number, name: string): number => {
    const value = b.readBigUInt64LE(offset);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw image.invalid(`sparse extent ${where}: ${name} ${value} is out of range`);
    return Number(value);
  };

  const version = b.readUInt32LE(OFF_VERSION);
  if (version < 1 || version > MAX_VERSION) throw image.unsupported(`VMDK sparse extent version ${version}`);
  const flags = b.readUInt32LE(OFF_FLAGS);
  if (flags & FLAG_NEWLINE_TEST && b.toString('latin1', OFF_NEWLINE_TEST, OFF_NEWLINE_TEST + 4) !== NEWLINE_TEST) {
    throw image.invalid(`sparse extent ${where}: its newline test characters are mangled (was the file copied as text?)`);
  }

  const capacity = u64(OFF_CAPACITY, 'capacity');
  if (capacity === 0) throw image.unsupported('a VMDK sparse header without capacity (a descriptor stored in a sparse header)');
  if (capacity > MAX_CAPACITY_SECTORS) throw image.invalid(`sparse extent ${where}: capacity of ${capacity} sectors is more than 64 TiB`);
  const grainSize = u64(OFF_GRAIN_SIZE, 'grainSize');
  if (grainSize < MIN_GRAIN_SECTORS || grainSize > MAX_GRAIN_SECTORS || (grainSize & (grainSize - 1)) !== 0) {
    throw image.invalid(`sparse extent ${where}: grain size of ${grainSize} sectors is not a power of two from ${MIN_GRAIN_SECTORS} to ${MAX_GRAIN_SECTORS}`);
  }
  const gtesPerGt = b.readUInt32LE(OFF_GTES_PER_GT);
  if (gtesPerGt < 1 || gtesPerGt > MAX_GTES_PER_GT) throw image.invalid(`sparse extent ${where}: ${gtesPerGt} entries per grain table (1..${MAX_GTES_PER_GT} allowed)`);

  let descriptorOffset = u64(OFF_DESCRIPTOR_OFFSET, 'descriptorOffset');
  let descriptorSize = u64(OFF_DESCRIPTOR_SIZE, 'descriptorSize');
  if (descriptorOffset === 0 || descriptorSize === 0) descriptorOffset = descriptorSize = 0;
  if (descriptorSize > MAX_DESCRIPTOR_SECTORS) throw image.invalid(`sparse extent ${where}: embedded descriptor of ${descriptorSize} sectors is more than 1 MiB`);

  const rawGd = b.readBigUInt64LE(OFF_GD_OFFSET);
  const gdOffset = rawGd === GD_AT_END ? 'footer' : u64(OFF_GD_OFFSET, 'gdOffset');
  if (gdOffset === 0) throw image.invalid(`sparse extent ${where}: grain directory at sector 0`);

  const algorithm = b.readUInt16LE(OFF_COMPRESS_ALGORITHM);
  if (algorithm !== COMPRESS_NONE && algorithm !== COMPRESS_DEFLATE) throw image.unsupported(`VMDK compression algorithm ${algorithm}`);
  const compressed = algorithm === COMPRESS_DEFLATE;
  if (flags & FLAG_COMPRESSED && !compressed) throw image.invalid(`sparse extent ${where}: compressed-grain flag without a compression algorithm`);
  const markers = (flags & FLAG_MARKERS) !== 0;
  if (compressed && !markers) throw image.unsupported('VMDK compressed grains without grain markers');

  return {
    version,
    flags,
    capacity,
    grainSize,
    descriptorOffset,
    descriptorSize,
    gtesPerGt,
    rgdOffset: flags & FLAG_REDUNDANT_GT ? u64(OFF_RGD_OFFSET, 'rgdOffset') : 0,
    gdOffset,
    overHead: u64(OFF_OVERHEAD, 'overHead'),
    uncleanShutdown: b[OFF_UNCLEAN_SHUTDOWN] !== 0,
    zeroedGrains: (flags & FLAG_ZEROED_GRAIN) !== 0,
    compressed,
    markers,
  };
}

/** The header flag bits, for writers. */
export const SPARSE_FLAGS = {
  newlineTest: FLAG_NEWLINE_TEST,
  redundantGt: FLAG_REDUNDANT_GT,
  compressed: FLAG_COMPRESSED,
  markers: FLAG_MARKERS,
} as const;

/** The fields a writer sets; the rest of the sector is zero. */
export type SparseHeaderFields = Pick<
  SparseHeader,
  'version' | 'flags' | 'capacity' | 'grainSize' | 'descriptorOffset' | 'descriptorSize' | 'gtesPerGt' | 'rgdOffset' | 'gdOffset' | 'overHead' | 'compressed'
>;

/**
 * Encodes a 512-byte header (the inverse of {@link parseSparseHeader}): `gdOffset` 'footer'
 * is written as 0xFFFFFFFFFFFFFFFF, `compressed` as algorithm 1 (deflate), the newline test
 * characters always, uncleanShutdown 0.
 */
export function encodeSparseHeader(header: SparseHeaderFields): Buffer {
  const b = Buffer.alloc(SPARSE_HEADER_SIZE);
  b.write(SPARSE_MAGIC, OFF_MAGIC, 'latin1');
  b.writeUInt32LE(header.version, OFF_VERSION);
  b.writeUInt32LE(header.flags, OFF_FLAGS);
  b.writeBigUInt64LE(BigInt(header.capacity), OFF_CAPACITY);
  b.writeBigUInt64LE(BigInt(header.grainSize), OFF_GRAIN_SIZE);
  b.writeBigUInt64LE(BigInt(header.descriptorOffset), OFF_DESCRIPTOR_OFFSET);
  b.writeBigUInt64LE(BigInt(header.descriptorSize), OFF_DESCRIPTOR_SIZE);
  b.writeUInt32LE(header.gtesPerGt, OFF_GTES_PER_GT);
  b.writeBigUInt64LE(BigInt(header.rgdOffset), OFF_RGD_OFFSET);
  b.writeBigUInt64LE(header.gdOffset === 'footer' ? GD_AT_END : BigInt(header.gdOffset), OFF_GD_OFFSET);
  b.writeBigUInt64LE(BigInt(header.overHead), OFF_OVERHEAD);
  b[OFF_UNCLEAN_SHUTDOWN] = 0;
  b.write(NEWLINE_TEST, OFF_NEWLINE_TEST, 'latin1');
  b.writeUInt16LE(header.compressed ? COMPRESS_DEFLATE : COMPRESS_NONE, OFF_COMPRESS_ALGORITHM);
  return b;
}
