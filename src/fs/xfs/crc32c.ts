/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every XFS v5
 * metadata structure. XFS stores it little-endian inside the structure it covers and
 * computes it with those 4 bytes taken as zero; the stored value is the standard CRC-32C
 * (initial value ~0, final complement).
 */
const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function update(crc: number, bytes: Uint8Array, start: number, end: number): number {
  let c = crc;
  for (let i = start; i < end; i++) c = (TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c;
}

/** The standard CRC-32C of `bytes`. @example crc32c(Buffer.from('123456789')) === 0xe3069283 */
export function crc32c(bytes: Uint8Array): number {
  return (update(0xffffffff, bytes, 0, bytes.length) ^ 0xffffffff) >>> 0;
}

/**
 * True when the little-endian CRC-32C stored at `crcOffset` in `bytes` matches the CRC of
 * `bytes` computed with that field as zero (how XFS checks a block or an inode).
 */
export function xfsCrcMatches(bytes: Uint8Array, crcOffset: number): boolean {
  if (crcOffset < 0 || crcOffset + 4 > bytes.length) return false;
  let c = update(0xffffffff, bytes, 0, crcOffset);
  c = update(c, ZEROS, 0, 4);
  c = update(c, bytes, crcOffset + 4, bytes.length);
  const computed = (c ^ 0xffffffff) >>> 0;
  const stored = ((bytes[crcOffset] as number) | ((bytes[crcOffset + 1] as number) << 8) | ((bytes[crcOffset + 2] as number) << 16) | ((bytes[crcOffset + 3] as number) << 24)) >>> 0;
  return computed === stored;
}

const ZEROS = new Uint8Array(4);
