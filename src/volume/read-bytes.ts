import type { BlockDevice } from '../blockdev/index.js';

/**
 * Reads `[offset, offset + length)` of `device` as a Buffer, clipped to the device's end;
 * returns an empty buffer when `offset` lies at or beyond the end (a table that points past
 * the disk is a finding for the caller, not a crash). `length` is the caller's bounded size.
 */
export async function readClipped(device: BlockDevice, offset: number, length: number): Promise<Buffer> {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= device.size || length <= 0) return Buffer.alloc(0);
  const n = Math.min(length, device.size - offset);
  const bytes = await device.read(offset, n);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A little-endian u64 as a number; values beyond 2^53 - 1 become Infinity (always out of bounds). */
export function u64(bytes: Buffer, offset: number): number {
  const value = bytes.readBigUInt64LE(offset);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(value);
}

/** The 16 bytes of a GUID in its text form: first three fields little-endian, upper case. */
export function formatGuid(bytes: Buffer, offset: number): string {
  const hex = (from: number, to: number, reverse: boolean): string => {
    const part = [...bytes.subarray(offset + from, offset + to)];
    return Buffer.from(reverse ? part.reverse() : part).toString('hex');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`.toUpperCase();
}
