/**
 * The markers of a stream-optimized VMDK extent (Virtual Disk Format 1.1,
 * §"Stream-Optimized Compressed Sparse Extents"), little-endian, sector-aligned:
 *
 * Grain marker, before each compressed grain (the grain table entry points at it):
 * ```
 * offset size field
 *      0    8 lba: the first sector of the grain in the virtual disk
 *      8    4 size: bytes of compressed data that follow (> 0)
 *     12 size data: one zlib stream (RFC 1950) inflating to at most one grain
 * ```
 * Metadata marker, one sector before each grain table, grain directory and footer:
 * ```
 *      0    8 numSectors of metadata that follow
 *      8    4 size: 0 (this is what tells it from a grain marker)
 *     12    4 type: 0 end of stream, 1 grain table, 2 grain directory, 3 footer
 *     16  496 padding
 * ```
 * An extent written in one pass stores gdOffset 0xFFFFFFFFFFFFFFFF in its header and ends
 * with three sectors: a footer marker, the footer (a copy of the header holding the real
 * gdOffset, at file size − 1024), and an end-of-stream marker. The grain directory and
 * tables the footer leads to are found through it, so the markers need not be walked.
 * qemu-img writes its stream-optimized files with the directory at the front and no footer.
 */
import { promisify } from 'node:util';
import { inflate } from 'node:zlib';
import { SECTOR, type Complaints } from './sparse-header.js';

const inflateAsync = promisify(inflate);

/** Bytes of a grain marker before the compressed data. */
export const GRAIN_MARKER_SIZE = 12;
const OFF_LBA = 0;
const OFF_SIZE = 8;
const OFF_TYPE = 12;
const MARKER_END_OF_STREAM = 0;
const MARKER_GRAIN_TABLE = 1;
const MARKER_GRAIN_DIRECTORY = 2;
const MARKER_FOOTER = 3;
/** Metadata marker types, for writers. */
export const MARKER_TYPES = { endOfStream: MARKER_END_OF_STREAM, grainTable: MARKER_GRAIN_TABLE, grainDirectory: MARKER_GRAIN_DIRECTORY, footer: MARKER_FOOTER } as const;
/** Footer marker, footer, end-of-stream marker. */
export const FOOTER_TAIL_SIZE = 3 * SECTOR;

/** A parsed grain marker. */
export interface GrainMarker {
  /** First sector of the grain in the virtual disk. */
  lba: number;
  /** Bytes of compressed data after the marker. */
  size: number;
}

/** Parses the 12-byte grain marker at the start of `bytes`. */
export function parseGrainMarker(bytes: Buffer, image: Complaints, host: number): GrainMarker {
  if (bytes.length < GRAIN_MARKER_SIZE) throw image.invalid(`grain marker at byte ${host} is truncated`, host);
  const lba = bytes.readBigUInt64LE(OFF_LBA);
  if (lba > BigInt(Number.MAX_SAFE_INTEGER)) throw image.invalid(`grain marker at byte ${host} has LBA ${lba}`, host);
  return { lba: Number(lba), size: bytes.readUInt32LE(OFF_SIZE) };
}

/**
 * Checks the three sectors that end a stream-optimized extent (`tail`, 1536 bytes) and
 * returns the footer sector, to be parsed as a sparse header.
 */
export function footerSector(tail: Buffer, image: Complaints): Buffer {
  if (tail.length !== FOOTER_TAIL_SIZE) throw image.invalid('the stream-optimized extent is too short to hold a footer');
  const marker = tail.subarray(0, SECTOR);
  const end = tail.subarray(2 * SECTOR);
  const isMetadataMarker = (m: Buffer, type: number): boolean => m.readUInt32LE(OFF_SIZE) === 0 && m.readUInt32LE(OFF_TYPE) === type;
  if (!isMetadataMarker(marker, MARKER_FOOTER)) throw image.invalid('the header defers its grain directory to a footer, but no footer marker precedes the last two sectors');
  if (!isMetadataMarker(end, MARKER_END_OF_STREAM) || end.readBigUInt64LE(OFF_LBA) !== 0n) {
    throw image.invalid('the stream-optimized extent does not end with an end-of-stream marker');
  }
  return tail.subarray(SECTOR, 2 * SECTOR);
}

/**
 * Inflates one compressed grain: at most `grainBytes` come out (a stream that would give more
 * is rejected without producing it), and at least `needed` must, or the grain is damaged.
 * Runs on libuv's thread pool, off the main thread. Returns a buffer of exactly `grainBytes`,
 * zero-filled past what the stream held. Throws `E_IMAGE_INVALID` naming the grain's offset.
 */
export async function inflateGrain(compressed: Buffer, grainBytes: number, needed: number, image: Complaints, host: number): Promise<Buffer> {
  let out: Buffer;
  try {
    out = await inflateAsync(compressed, { maxOutputLength: grainBytes });
  } catch (error) {
    throw image.invalid(`compressed grain at byte ${host} does not inflate: ${(error as Error).message}`, host);
  }
  if (out.length < needed) throw image.invalid(`compressed grain at byte ${host} inflates to ${out.length} bytes, ${needed} expected`, host);
  if (out.length === grainBytes) return out;
  const grain = Buffer.alloc(grainBytes);
  out.copy(grain);
  return grain;
}

/** Encodes the 12 bytes of a grain marker (the inverse of {@link parseGrainMarker}). */
export function encodeGrainMarker(marker: GrainMarker): Buffer {
  const b = Buffer.alloc(GRAIN_MARKER_SIZE);
  b.writeBigUInt64LE(BigInt(marker.lba), OFF_LBA);
  b.writeUInt32LE(marker.size, OFF_SIZE);
  return b;
}

/** Encodes a metadata marker sector announcing `numSectors` of metadata of `type` ({@link MARKER_TYPES}). */
export function encodeMetadataMarker(numSectors: number, type: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.writeBigUInt64LE(BigInt(numSectors), OFF_LBA);
  b.writeUInt32LE(type, OFF_TYPE);
  return b;
}
