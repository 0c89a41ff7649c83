import { fsCorrupt } from '../fs-errors.js';

/**
 * A run of clusters of a non-resident attribute: `length` clusters starting at virtual
 * cluster `vcn` lie at logical cluster `lcn` of the volume, or nowhere (`lcn` null: a
 * sparse run, or the unused tail of a compression unit) and read as zeros.
 */
export interface Run {
  vcn: number;
  lcn: number | null;
  length: number;
}

/** No attribute of a sane volume has more runs; a hostile one is refused, not allocated. */
export const MAX_RUNS = 1 << 20;

/**
 * Decodes mapping pairs (the runlist) starting at `startVcn`. Each run is:
 *
 * | bytes | field |
 * |------:|-------|
 * | 1 | header: low nibble L = size of the length field, high nibble O = size of the offset field; 0 ends the list |
 * | L | run length in clusters, unsigned little-endian |
 * | O | LCN delta from the previous run's LCN, signed little-endian; O = 0 means a sparse run |
 *
 * Checks that every LCN lies in `[0, totalClusters)`; throws `E_FS_CORRUPT` naming `what`.
 */
export function decodeRunlist(pairs: Uint8Array, startVcn: number, totalClusters: number, what: string): Run[] {
  const runs: Run[] = [];
  let position = 0;
  let vcn = startVcn;
  let lcn = 0;
  while (position < pairs.length) {
    const header = pairs[position]!;
    if (header === 0) return runs;
    const lengthSize = header & 0x0f;
    const offsetSize = header >> 4;
    if (lengthSize === 0 || lengthSize > 8 || offsetSize > 8 || position + 1 + lengthSize + offsetSize > pairs.length) {
      throw fsCorrupt('ntfs', `${what}: bad runlist header 0x${header.toString(16)} at ${position}`);
    }
    const length = readInt(pairs, position + 1, lengthSize, false);
    if (!(length > 0) || !Number.isSafeInteger(length)) throw fsCorrupt('ntfs', `${what}: run of ${length} clusters`);
    let runLcn: number | null = null;
    if (offsetSize > 0) {
      lcn += readInt(pairs, position + 1 + lengthSize, offsetSize, true);
      if (!Number.isSafeInteger(lcn) || lcn < 0 || lcn + length > totalClusters) throw fsCorrupt('ntfs', `${what}: run at cluster ${lcn} (+${length}) outside the volume`);
      runLcn = lcn;
    }
    runs.push({ vcn, lcn: runLcn, length });
    vcn += length;
    if (!Number.isSafeInteger(vcn) || runs.length > MAX_RUNS) throw fsCorrupt('ntfs', `${what}: runlist too long`);
    position += 1 + lengthSize + offsetSize;
  }
  throw fsCorrupt('ntfs', `${what}: runlist has no end marker`);
}

/** A little-endian integer of 1…8 bytes; NaN beyond ±2^53 (the callers refuse it). */
function readInt(bytes: Uint8Array, at: number, size: number, signed: boolean): number {
  let value = 0n;
  for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[at + i]!);
  if (signed && (bytes[at + size - 1]! & 0x80) !== 0) value -= 1n << BigInt(size * 8);
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) return Number.NaN;
  return Number(value);
}
