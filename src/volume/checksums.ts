import { crc32 as zlibCrc32 } from 'node:zlib';

/** CRC-32 (IEEE 802.3, reflected, init and final XOR 0xFFFFFFFF): GPT headers and entry arrays. */
export function crc32(bytes: Uint8Array): number {
  return zlibCrc32(bytes) >>> 0;
}

/** The starting value of LVM2's checksums (`INITIAL_CRC` in LVM's `lib/misc/crc.h`). */
export const LVM_INITIAL_CRC = 0xf597a6cf;

/**
 * LVM2's checksum (`calc_crc`): the same polynomial and table as CRC-32, but starting from
 * {@link LVM_INITIAL_CRC} and with no final inversion. Chain pieces by passing the previous
 * result as `previous`.
 */
export function lvmChecksum(bytes: Uint8Array, previous = LVM_INITIAL_CRC): number {
  // zlib inverts on entry and on exit: undo both to get LVM's plain register.
  return ~zlibCrc32(bytes, ~previous >>> 0) >>> 0;
}
