import { crc32c, crc32cUpdate } from '../crc32c.js';

/**
 * XFS v5 metadata checksums: the standard CRC-32C (../crc32c.ts), stored little-endian inside
 * the structure it covers and computed with those 4 bytes taken as zero.
 */
export { crc32c };

/**
 * True when the little-endian CRC-32C stored at `crcOffset` in `bytes` matches the CRC of
 * `bytes` computed with that field as zero (how XFS checks a block or an inode).
 */
export function xfsCrcMatches(bytes: Uint8Array, crcOffset: number): boolean {
  if (crcOffset < 0 || crcOffset + 4 > bytes.length) return false;
  let c = crc32cUpdate(0xffffffff, bytes, 0, crcOffset);
  c = crc32cUpdate(c, ZEROS);
  c = crc32cUpdate(c, bytes, crcOffset + 4);
  const computed = (c ^ 0xffffffff) >>> 0;
  const stored = ((bytes[crcOffset] as number) | ((bytes[crcOffset + 1] as number) << 8) | ((bytes[crcOffset + 2] as number) << 16) | ((bytes[crcOffset + 3] as number) << 24)) >>> 0;
  return computed === stored;
}

const ZEROS = new Uint8Array(4);
