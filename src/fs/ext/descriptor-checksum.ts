import { crc32cUpdate } from '../crc32c.js';
import { RO_COMPAT, type Superblock } from './superblock.js';

/**
 * bg_checksum, the 16-bit checksum at 0x1E of each group descriptor (see group-descriptors.ts),
 * as the ext4 on-disk format defines it. The descriptor's group number (little-endian u32)
 * is part of the sum, so a descriptor copied to another slot does not check.
 *
 * - metadata_csum: the low 16 bits of the raw CRC-32C register started from the
 *   filesystem's seed (superblock.ts `checksumSeed`), fed the group number, the descriptor's
 *   first 0x1E bytes, two zero bytes in place of bg_checksum, and the rest of the descriptor.
 * - uninit_bg (RO_COMPAT GDT_CSUM) without metadata_csum: CRC-16 (reflected polynomial
 *   0xA001, as the kernel's crc16) started from 0xFFFF, fed the 16 UUID bytes, the group
 *   number, the first 0x1E bytes, then the bytes from 0x20 to the descriptor's end (64bit).
 *   Neither register is complemented.
 * - neither feature: descriptors carry no checksum.
 */
export const CHECKSUM_OFFSET = 0x1e;

/** The checksum descriptor `group` must carry, or undefined when the filesystem keeps none. */
export function expectedDescriptorChecksum(sb: Superblock, group: number, descriptor: Uint8Array): number | undefined {
  const groupBytes = new Uint8Array(4);
  new DataView(groupBytes.buffer).setUint32(0, group, true);
  const end = sb.descSize;
  if ((sb.featureRoCompat & RO_COMPAT.METADATA_CSUM) !== 0) {
    let crc = crc32cUpdate(sb.checksumSeed, groupBytes);
    crc = crc32cUpdate(crc, descriptor, 0, CHECKSUM_OFFSET);
    crc = crc32cUpdate(crc, TWO_ZEROS);
    crc = crc32cUpdate(crc, descriptor, CHECKSUM_OFFSET + 2, end);
    return crc & 0xffff;
  }
  if ((sb.featureRoCompat & RO_COMPAT.GDT_CSUM) !== 0) {
    let crc = crc16Update(0xffff, sb.uuidBytes, 0, sb.uuidBytes.length);
    crc = crc16Update(crc, groupBytes, 0, 4);
    crc = crc16Update(crc, descriptor, 0, CHECKSUM_OFFSET);
    crc = crc16Update(crc, descriptor, CHECKSUM_OFFSET + 2, end);
    return crc;
  }
  return undefined;
}

const TWO_ZEROS = new Uint8Array(2);

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xa001 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/**
 * The CRC-16 register (reflected 0xA001, no final complement) after `bytes[start, end)`.
 * @example crc16Update(0, Buffer.from('123456789'), 0, 9) === 0xbb3d // CRC-16/ARC check value
 */
export function crc16Update(crc: number, bytes: Uint8Array, start: number, end: number): number {
  let c = crc;
  for (let i = start; i < end; i++) c = (CRC16_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c & 0xffff;
}
