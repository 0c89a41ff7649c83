/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of VHDX headers, region
 * tables and log entries. Node 20's zlib has crc32 but not crc32c; this is the plain
 * byte-at-a-time table form, enough for the few 4 KiB and 64 KiB structures read at open.
 */

const POLYNOMIAL = 0x82f63b78;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * The CRC-32C of `bytes`, as an unsigned 32-bit number. When `skip` is given, the 4 bytes at
 * that offset count as zeros (a structure's own checksum field).
 *
 * @example crc32c(Buffer.from('123456789')) === 0xe3069283
 */
export function crc32c(bytes: Uint8Array, skip?: number): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) {
    const byte = skip !== undefined && i >= skip && i < skip + 4 ? 0 : (bytes[i] as number);
    crc = (TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}
