import { fsCorrupt } from '../fs-errors.js';

/**
 * LZNT1, the compression of NTFS compressed files. A compression unit (16 clusters) is
 * compressed as a sequence of chunks, each decompressing to at most 4096 bytes:
 *
 * | bytes | field |
 * |------:|-------|
 * | 2 | chunk header, little-endian: bits 0–11 = chunk size − 3 (the header included), bits 12–14 = 3 (signature), bit 15 = compressed; 0 ends the unit |
 * | n | if not compressed: 4096 literal bytes; if compressed: groups of one flag byte and eight tokens |
 *
 * In a compressed chunk each flag bit (lowest first) says whether the next token is a
 * literal byte (0) or a 2-byte back-reference (1). A back-reference splits its 16 bits
 * into a displacement and a length whose widths depend on how many bytes of this chunk are
 * already out (`p`): the displacement takes 4 bits while p ≤ 16, one more bit each time p
 * doubles (up to 12); the length takes the rest. Copy `length + 3` bytes from
 * `p − (displacement + 1)`, byte by byte (they may overlap). A chunk that ends short of 4096
 * bytes, when another chunk follows, leaves zeros up to the 4096-byte boundary.
 */
export const LZNT1_CHUNK = 4096;

/**
 * Decompresses one compression unit into `out` (its length is the unit size) and returns
 * the number of bytes produced; the rest of `out` is zeros. Throws `E_FS_CORRUPT` naming
 * `what` on a malformed stream.
 */
export function decompressLznt1(input: Uint8Array, out: Uint8Array, what: string): number {
  out.fill(0);
  let inPos = 0;
  let outPos = 0;
  while (inPos + 2 <= input.length && outPos < out.length) {
    const header = input[inPos]! | (input[inPos + 1]! << 8);
    if (header === 0) break;
    const chunkEnd = inPos + (header & 0x0fff) + 3;
    if (chunkEnd > input.length) throw fsCorrupt('ntfs', `${what}: LZNT1 chunk runs past the compressed data`);
    const chunkStart = outPos;
    const chunkLimit = Math.min(out.length, chunkStart + LZNT1_CHUNK);
    inPos += 2;
    if ((header & 0x8000) === 0) {
      const length = Math.min(chunkEnd - inPos, chunkLimit - outPos);
      out.set(input.subarray(inPos, inPos + length), outPos);
      outPos += length;
    } else {
      while (inPos < chunkEnd) {
        const flags = input[inPos++]!;
        for (let bit = 0; bit < 8 && inPos < chunkEnd; bit++) {
          if ((flags & (1 << bit)) === 0) {
            if (outPos >= chunkLimit) throw fsCorrupt('ntfs', `${what}: LZNT1 chunk decompresses past 4096 bytes`);
            out[outPos++] = input[inPos++]!;
            continue;
          }
          if (inPos + 2 > chunkEnd) throw fsCorrupt('ntfs', `${what}: LZNT1 back-reference cut short`);
          const token = input[inPos]! | (input[inPos + 1]! << 8);
          inPos += 2;
          const produced = outPos - chunkStart;
          let lengthBits = 12;
          for (let p = produced - 1; p >= 0x10; p >>= 1) lengthBits--;
          const displacement = (token >> lengthBits) + 1;
          const length = (token & ((1 << lengthBits) - 1)) + 3;
          if (displacement > produced) throw fsCorrupt('ntfs', `${what}: LZNT1 back-reference before the chunk`);
          if (outPos + length > chunkLimit) throw fsCorrupt('ntfs', `${what}: LZNT1 chunk decompresses past 4096 bytes`);
          for (let i = 0; i < length; i++, outPos++) out[outPos] = out[outPos - displacement]!;
        }
      }
    }
    inPos = chunkEnd;
    // A chunk shorter than 4096 bytes followed by another: the gap reads as zeros.
    if (inPos + 2 <= input.length && (input[inPos]! | (input[inPos + 1]! << 8)) !== 0) outPos = chunkLimit;
  }
  return outPos;
}
