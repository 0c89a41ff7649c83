/**
 * An index segment (repository format 2): the chunks one backup added, sorted by id, each
 * with its location, so later backups deduplicate against every stored chunk (clones, other
 * VMs) without asking the storage per chunk. Stored as an envelope of kind 11 under
 * `segments/<64 hex>`, its id the object id (§4) of its plaintext. PLEASE DO NOT CHANGE THESE
 * VALUES. Integers little-endian.
 *
 * ```
 * offset  size  field
 *      0     4  magic, ASCII "CFS1"
 *      4     4  entry count n, uint32, 1..MAX_SEGMENT_ENTRIES
 *      8     8  reserved, 0
 *     16  80·n  located entries (located-entry.ts), sorted by chunk id, ids unique
 * ```
 */
import { CofferError } from '../../errors/index.js';
import { LOCATED_ENTRY_SIZE } from './located-entry.js';

export const SEGMENT_MAGIC = Buffer.from('CFS1', 'ascii');
export const SEGMENT_HEADER_SIZE = 16;
/** 65,536 entries: a 5 MiB segment per 16 GiB of new data at 256 KiB blocks. */
export const MAX_SEGMENT_ENTRIES = 65_536;

/** Serializes entries (80 bytes each), sorting them by chunk id and dropping repeated ids. */
export function encodeSegment(entries: readonly Buffer[]): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.subarray(0, 32), b.subarray(0, 32)));
  const unique = sorted.filter((entry, i) => i === 0 || !entry.subarray(0, 32).equals((sorted[i - 1] as Buffer).subarray(0, 32)));
  if (unique.length < 1 || unique.length > MAX_SEGMENT_ENTRIES) throw new RangeError(`a segment holds 1..${MAX_SEGMENT_ENTRIES} entries`);
  const out = Buffer.alloc(SEGMENT_HEADER_SIZE + unique.length * LOCATED_ENTRY_SIZE);
  SEGMENT_MAGIC.copy(out, 0);
  out.writeUInt32LE(unique.length, 4);
  unique.forEach((entry, i) => {
    if (entry.length !== LOCATED_ENTRY_SIZE) throw new RangeError(`a segment entry has ${LOCATED_ENTRY_SIZE} bytes`);
    entry.copy(out, SEGMENT_HEADER_SIZE + i * LOCATED_ENTRY_SIZE);
  });
  return out;
}

/** The first 38 bits of the chunk id starting at `bytes[at]`, as a number (exact in a double). */
export function idPrefix(bytes: Uint8Array, at: number): number {
  return (bytes[at] as number) * 2 ** 30 + (bytes[at + 1] as number) * 2 ** 22 + (bytes[at + 2] as number) * 2 ** 14 + (bytes[at + 3] as number) * 2 ** 6 + ((bytes[at + 4] as number) >>> 2);
}

/** A parsed segment: its entries in id order, binary-searchable. */
export class IndexSegment {
  readonly count: number;

  private constructor(private readonly bytes: Buffer) {
    this.count = bytes.readUInt32LE(4);
  }

  /** Parses and checks a segment's plaintext (`E_CORRUPT_OBJECT`). */
  static decode(bytes: Buffer, name: string): IndexSegment {
    const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `index segment ${name} is corrupt: ${why}`, { subject: { object: name } });
    if (bytes.length < SEGMENT_HEADER_SIZE || !bytes.subarray(0, 4).equals(SEGMENT_MAGIC)) throw corrupt('bad magic');
    const count = bytes.readUInt32LE(4);
    if (count < 1 || count > MAX_SEGMENT_ENTRIES) throw corrupt(`${count} entries`);
    if (bytes.length !== SEGMENT_HEADER_SIZE + count * LOCATED_ENTRY_SIZE) throw corrupt('length does not match the entry count');
    const segment = new IndexSegment(bytes);
    for (let i = 1; i < count; i++) if (segment.compareIdAt(i, bytes, SEGMENT_HEADER_SIZE + (i - 1) * LOCATED_ENTRY_SIZE) <= 0) throw corrupt('entries out of order');
    return segment;
  }

  /** The chunk id of entry `i` (a view). */
  idAt(i: number): Buffer {
    const at = SEGMENT_HEADER_SIZE + i * LOCATED_ENTRY_SIZE;
    return this.bytes.subarray(at, at + 32);
  }

  /**
   * The first 38 bits of entry `i`'s chunk id as a number (what the chunk index keeps in
   * memory), read in place: loading an index reads every entry of every segment.
   */
  prefixAt(i: number): number {
    return idPrefix(this.bytes, SEGMENT_HEADER_SIZE + i * LOCATED_ENTRY_SIZE);
  }

  /**
   * Entry `i`'s chunk id compared with the 32 bytes of `other` at `offset` (< 0, 0, > 0),
   * without a view: the first four bytes as numbers, the rest only when those are equal.
   */
  private compareIdAt(i: number, other: Uint8Array, offset: number): number {
    const at = SEGMENT_HEADER_SIZE + i * LOCATED_ENTRY_SIZE;
    const mine = this.bytes.readUInt32BE(at);
    const theirs = (((other[offset] as number) << 24) | ((other[offset + 1] as number) << 16) | ((other[offset + 2] as number) << 8) | (other[offset + 3] as number)) >>> 0;
    if (mine !== theirs) return mine < theirs ? -1 : 1;
    return this.bytes.compare(other, offset, offset + 32, at, at + 32);
  }

  /** The whole 80-byte entry `i` (a view). */
  entryAt(i: number): Buffer {
    const at = SEGMENT_HEADER_SIZE + i * LOCATED_ENTRY_SIZE;
    return this.bytes.subarray(at, at + LOCATED_ENTRY_SIZE);
  }

  /**
   * The entry of chunk `id`, or undefined: a binary search, each step comparing four bytes as
   * numbers first ({@link compareIdAt}; a call into Buffer#compare at every step was 3 % of a
   * file restore's samples, and every segment's order is checked so when it is decoded).
   */
  find(id: Uint8Array): Buffer | undefined {
    let low = 0;
    let high = this.count - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const order = this.compareIdAt(mid, id, 0);
      if (order === 0) return this.entryAt(mid);
      if (order < 0) low = mid + 1;
      else high = mid - 1;
    }
    return undefined;
  }
}
