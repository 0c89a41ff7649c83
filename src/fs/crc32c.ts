/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of XFS v5 metadata and
 * of ext4's metadata_csum structures. The standard CRC-32C starts from ~0 and complements
 * the result ({@link crc32c}); ext4 chains the raw register from a seed instead and stores it
 * uncomplemented, hence {@link crc32cUpdate}.
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

/**
 * The CRC-32C register after feeding `bytes[start, end)` to it from `crc`, neither
 * pre- nor post-complemented (unsigned).
 * @example crc32cUpdate(0xffffffff, Buffer.from('123456789')) === (~0xe3069283 >>> 0)
 */
export function crc32cUpdate(crc: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = crc;
  for (let i = start; i < end; i++) c = (TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
}

/** The standard CRC-32C of `bytes`. @example crc32c(Buffer.from('123456789')) === 0xe3069283 */
export function crc32c(bytes: Uint8Array): number {
  return (crc32cUpdate(0xffffffff, bytes) ^ 0xffffffff) >>> 0;
}
