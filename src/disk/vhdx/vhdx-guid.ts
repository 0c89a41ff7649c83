/**
 * GUIDs as VHDX stores them: 16 bytes in Microsoft's mixed-endian layout (the first three
 * fields little-endian u32, u16, u16; the last eight bytes as written), compared as the usual
 * upper-case text `2DC27766-F623-4200-9D64-115E9BFD4A08`.
 */

export const GUID_SIZE = 16;
export const NIL_GUID = '00000000-0000-0000-0000-000000000000';

/** The GUID at `at` in `bytes` as upper-case text; the caller has checked the 16 bytes exist. */
export function readGuid(bytes: Uint8Array, at: number): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const hex = (n: number, digits: number) => n.toString(16).padStart(digits, '0');
  const tail = b.toString('hex', at + 8, at + 16);
  return `${hex(b.readUInt32LE(at), 8)}-${hex(b.readUInt16LE(at + 4), 4)}-${hex(b.readUInt16LE(at + 6), 4)}-${tail.slice(0, 4)}-${tail.slice(4)}`.toUpperCase();
}

/** A GUID's text as its 16 stored bytes (the inverse of {@link readGuid}; for tests and writers). */
export function guidBytes(text: string): Buffer {
  const hex = text.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a GUID: ${text}`);
  const out = Buffer.alloc(GUID_SIZE);
  out.writeUInt32LE(parseInt(hex.slice(0, 8), 16), 0);
  out.writeUInt16LE(parseInt(hex.slice(8, 12), 16), 4);
  out.writeUInt16LE(parseInt(hex.slice(12, 16), 16), 6);
  Buffer.from(hex.slice(16), 'hex').copy(out, 8);
  return out;
}
