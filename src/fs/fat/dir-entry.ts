/**
 * The 32-byte FAT directory entries (fatgen103 §6 and §7). Little-endian integers.
 *
 * Short (8.3) entry:
 * | offset | size | field            | meaning                                                     |
 * |-------:|-----:|------------------|-------------------------------------------------------------|
 * |      0 |   11 | DIR_Name         | 8 name + 3 extension bytes, space padded; byte 0: 0x00 end   |
 * |        |      |                  | of directory, 0xE5 deleted, 0x05 stands for a leading 0xE5  |
 * |     11 |    1 | DIR_Attr         | 0x01 read-only, 0x02 hidden, 0x04 system, 0x08 volume label, |
 * |        |      |                  | 0x10 directory, 0x20 archive; 0x0F (low 6 bits) = long name |
 * |     12 |    1 | DIR_NTRes        | 0x08: name shown lower case, 0x10: extension lower case (NT)|
 * |     13 |    1 | DIR_CrtTimeTenth | creation time, 10 ms units, 0..199                          |
 * |     14 |    2 | DIR_CrtTime      | creation time (see {@link decodeFatTime})                   |
 * |     16 |    2 | DIR_CrtDate      | creation date                                               |
 * |     18 |    2 | DIR_LstAccDate   | last access date                                            |
 * |     20 |    2 | DIR_FstClusHI    | high 16 bits of the first cluster (FAT32 only)              |
 * |     22 |    2 | DIR_WrtTime      | last write time                                             |
 * |     24 |    2 | DIR_WrtDate      | last write date                                             |
 * |     26 |    2 | DIR_FstClusLO    | low 16 bits of the first cluster (0 for an empty file)      |
 * |     28 |    4 | DIR_FileSize     | bytes (0 for directories)                                   |
 *
 * Long-name (VFAT) entry, stored in reverse order just before its short entry:
 * | offset | size | field        | meaning                                                         |
 * |-------:|-----:|--------------|-----------------------------------------------------------------|
 * |      0 |    1 | LDIR_Ord     | sequence 1..20 in the low 5 bits; 0x40 marks the last (first on disk) |
 * |      1 |   10 | LDIR_Name1   | characters 1-5 (UTF-16LE)                                       |
 * |     11 |    1 | LDIR_Attr    | 0x0F                                                            |
 * |     12 |    1 | LDIR_Type    | 0                                                               |
 * |     13 |    1 | LDIR_Chksum  | checksum of the short entry's 11 name bytes ({@link shortNameChecksum}) |
 * |     14 |   12 | LDIR_Name2   | characters 6-11                                                 |
 * |     26 |    2 | LDIR_FstClusLO | 0                                                             |
 * |     28 |    4 | LDIR_Name3   | characters 12-13                                                |
 * A name ends at a 0x0000 character (padding after it is 0xFFFF); at most 255 characters.
 */
export const DIR_ENTRY_SIZE = 32;

export const ATTR_READ_ONLY = 0x01;
export const ATTR_HIDDEN = 0x02;
export const ATTR_SYSTEM = 0x04;
export const ATTR_VOLUME_ID = 0x08;
export const ATTR_DIRECTORY = 0x10;
export const ATTR_ARCHIVE = 0x20;
export const ATTR_LONG_NAME = 0x0f;
const ATTR_LONG_NAME_MASK = 0x3f;
const NT_LOWER_BASE = 0x08;
const NT_LOWER_EXTENSION = 0x10;

/** One short (8.3) directory entry, parsed. */
export interface ShortEntry {
  /** The 11 name bytes as stored (0x05 not yet turned into 0xE5). */
  readonly rawName: Uint8Array;
  readonly attributes: number;
  /** The name as shown: `BASE.EXT`, with the NT lower-case flags applied. */
  readonly name: string;
  readonly firstCluster: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly birthtimeMs: number;
  readonly atimeMs: number;
}

/** One long-name entry, parsed. */
export interface LongNameEntry {
  readonly order: number;
  readonly last: boolean;
  readonly checksum: number;
  /** Its 13 UTF-16 code units, before the terminator is looked for. */
  readonly units: readonly number[];
}

/** What a 32-byte slot holds. */
export type DirSlot =
  | { kind: 'end' }
  | { kind: 'deleted' }
  | { kind: 'long'; entry: LongNameEntry }
  | { kind: 'volume-label'; rawName: Uint8Array }
  | { kind: 'short'; entry: ShortEntry };

/**
 * Parses the slot at `at` of `bytes` (which must hold 32 bytes there). `fat32` says whether
 * DIR_FstClusHI counts (on FAT12/16 it is ignored: OS/2 kept extended attributes there).
 */
export function parseDirSlot(bytes: Uint8Array, at: number, fat32: boolean): DirSlot {
  if (at < 0 || at + DIR_ENTRY_SIZE > bytes.length) throw new RangeError(`directory slot at ${at} is outside ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, DIR_ENTRY_SIZE);
  const first = view.getUint8(0);
  if (first === 0x00) return { kind: 'end' };
  if (first === 0xe5) return { kind: 'deleted' };
  const attributes = view.getUint8(11);
  if ((attributes & ATTR_LONG_NAME_MASK) === ATTR_LONG_NAME) {
    const units: number[] = [];
    for (const [start, count] of [[1, 5], [14, 6], [28, 2]] as const) {
      for (let i = 0; i < count; i++) units.push(view.getUint16(start + 2 * i, true));
    }
    return { kind: 'long', entry: { order: first & 0x1f, last: (first & 0x40) !== 0, checksum: view.getUint8(13), units } };
  }
  const rawName = bytes.slice(at, at + 11);
  if (attributes & ATTR_VOLUME_ID) return { kind: 'volume-label', rawName };
  const high = fat32 ? view.getUint16(20, true) : 0;
  const tenths = view.getUint8(13);
  return {
    kind: 'short',
    entry: {
      rawName,
      attributes,
      name: shortName(rawName, view.getUint8(12)),
      firstCluster: high * 0x10000 + view.getUint16(26, true),
      size: view.getUint32(28, true),
      mtimeMs: decodeFatTime(view.getUint16(24, true), view.getUint16(22, true)),
      birthtimeMs: decodeFatTime(view.getUint16(16, true), view.getUint16(14, true)) + (tenths <= 199 ? tenths * 10 : 0),
      atimeMs: decodeFatTime(view.getUint16(18, true), 0),
    },
  };
}

/**
 * The displayed 8.3 name: base and extension with trailing spaces removed, joined by `.` when
 * there is an extension; a leading 0x05 stands for 0xE5; NT flags lower-case the base (0x08)
 * or the extension (0x10), as Windows and Linux (`shortname=mixed`) show them. Bytes above
 * 0x7F are code page 437 (Linux's default `codepage`).
 */
export function shortName(raw: Uint8Array, ntFlags: number): string {
  const bytes = Uint8Array.from(raw.subarray(0, 11));
  if (bytes[0] === 0x05) bytes[0] = 0xe5;
  const part = (from: number, to: number, lower: boolean): string => {
    let end = to;
    while (end > from && bytes[end - 1] === 0x20) end--;
    let text = '';
    for (let i = from; i < end; i++) {
      const b = bytes[i]!;
      const ch = decodeCp437(b);
      const folded = lower ? ch.toLowerCase() : ch;
      text += folded.length === 1 ? folded : ch;
    }
    return text;
  };
  const base = part(0, 8, (ntFlags & NT_LOWER_BASE) !== 0);
  const extension = part(8, 11, (ntFlags & NT_LOWER_EXTENSION) !== 0);
  return extension === '' ? base : `${base}.${extension}`;
}

/** The volume label of a label entry or the BPB: code page 437, trailing spaces removed. */
export function decodeLabel(raw: Uint8Array): string {
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === 0x20 || raw[end - 1] === 0)) end--;
  let text = '';
  for (let i = 0; i < end; i++) text += decodeCp437(raw[i]!);
  return text;
}

/** The checksum long-name entries carry of their short entry's 11 name bytes (fatgen103 §7). */
export function shortNameChecksum(raw: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((sum & 1 ? 0x80 : 0) + (sum >> 1) + (raw[i] ?? 0)) & 0xff;
  return sum;
}

/**
 * A FAT date and time as milliseconds since 1970, read as UTC (FAT stores local time without a
 * zone). Date: bits 0-4 day 1..31, 5-8 month 1..12, 9-15 years since 1980. Time: bits 0-4
 * seconds / 2, 5-10 minutes, 11-15 hours. NaN for a zero (unset) or impossible date; an
 * impossible time counts as midnight.
 */
export function decodeFatTime(date: number, time: number): number {
  const day = date & 0x1f;
  const month = (date >> 5) & 0x0f;
  const year = 1980 + (date >> 9);
  if (date === 0 || day === 0 || month === 0 || month > 12) return NaN;
  const seconds = (time & 0x1f) * 2;
  const minutes = (time >> 5) & 0x3f;
  const hours = time >> 11;
  const ms = Date.UTC(year, month - 1, day);
  if (new Date(ms).getUTCDate() !== day) return NaN; // 31 February
  return hours < 24 && minutes < 60 && seconds < 60 ? ms + ((hours * 60 + minutes) * 60 + seconds) * 1000 : ms;
}

/** Code page 437's upper half (0x80..0xFF), the 8.3 names' default code page on Linux and US Windows. */
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

function decodeCp437(byte: number): string {
  return byte < 0x80 ? String.fromCharCode(byte) : CP437_HIGH[byte - 0x80]!;
}
