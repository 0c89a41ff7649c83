import { fsCorrupt } from '../fs-errors.js';

/**
 * The update sequence array ("fixups") of multi-sector structures (MFT records `FILE`,
 * index blocks `INDX`). Layout of the header both share:
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x00 | 4 | magic (`FILE`, `INDX`) |
 * | 0x04 | 2 | offset of the update sequence array |
 * | 0x06 | 2 | its count: 1 + number of 512-byte strides |
 *
 * The array holds the update sequence number (USN) then one saved u16 per 512-byte stride
 * (always 512, whatever the sector size). When written, the last two bytes of each stride
 * were replaced by the USN; reading checks they still equal it (a torn write otherwise)
 * and puts the saved bytes back.
 */
export const FIXUP_STRIDE = 512;

/**
 * Checks the magic and applies the fixups to `record` in place. Throws `E_FS_CORRUPT` with
 * `what` (e.g. `MFT record 42`) on a bad magic, a bad array or a torn stride.
 */
export function applyFixups(record: Uint8Array, magic: 'FILE' | 'INDX', what: string): void {
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  if (record.length < 8 || String.fromCharCode(record[0]!, record[1]!, record[2]!, record[3]!) !== magic) {
    throw fsCorrupt('ntfs', `${what}: no ${magic} signature`);
  }
  const usaOffset = view.getUint16(4, true);
  const usaCount = view.getUint16(6, true);
  const strides = record.length / FIXUP_STRIDE;
  if (usaCount !== strides + 1 || usaOffset % 2 !== 0 || usaOffset < 8 || usaOffset + usaCount * 2 > FIXUP_STRIDE - 2) {
    throw fsCorrupt('ntfs', `${what}: bad update sequence array (offset ${usaOffset}, count ${usaCount} for ${strides} strides)`);
  }
  const usn = view.getUint16(usaOffset, true);
  for (let i = 0; i < strides; i++) {
    const end = (i + 1) * FIXUP_STRIDE - 2;
    if (view.getUint16(end, true) !== usn) throw fsCorrupt('ntfs', `${what}: torn write in sector ${i} (update sequence mismatch)`);
    view.setUint16(end, view.getUint16(usaOffset + 2 + i * 2, true), true);
  }
}
