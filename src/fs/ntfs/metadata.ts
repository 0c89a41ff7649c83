import { fsCorrupt } from '../fs-errors.js';
import { decodeUtf16 } from './attribute.js';

/**
 * The small resident attributes that describe a file: $STANDARD_INFORMATION, $FILE_NAME,
 * and the file references that tie records and index entries to MFT records.
 */

/** Milliseconds between 1601-01-01 (the NTFS epoch) and 1970-01-01. */
const EPOCH_DIFFERENCE_MS = 11_644_473_600_000;

/** An NTFS time (100 ns units since 1601 UTC, u64) in milliseconds since 1970. */
export function ntfsTimeToMs(view: DataView, at: number): number {
  const ticks = view.getBigUint64(at, true);
  if (ticks === 0n) return Number.NaN;
  return Number(ticks / 10_000n) - EPOCH_DIFFERENCE_MS;
}

/**
 * A file reference (u64): bits 0–47 the MFT record number, bits 48–63 the record's
 * sequence number when the reference was made (a mismatch means a stale reference).
 */
export interface FileReference {
  record: number;
  sequence: number;
}

export function readFileReference(view: DataView, at: number): FileReference {
  const low = view.getUint32(at, true);
  const high = view.getUint16(at + 4, true);
  return { record: high * 2 ** 32 + low, sequence: view.getUint16(at + 6, true) };
}

/** FILE_ATTRIBUTE_* flags, as Windows shows them, and the names Coffer shows. */
export const FILE_ATTRIBUTE_NAMES: readonly [number, string][] = [
  [0x0001, 'readonly'], [0x0002, 'hidden'], [0x0004, 'system'], [0x0020, 'archive'],
  [0x0100, 'temporary'], [0x0200, 'sparse'], [0x0400, 'reparse'], [0x0800, 'compressed'],
  [0x1000, 'offline'], [0x2000, 'not-content-indexed'], [0x4000, 'encrypted'],
];
export const FILE_ATTRIBUTE_READONLY = 0x0001;

/**
 * $STANDARD_INFORMATION (type 0x10, resident, 48 bytes in NTFS 1.2, 72 in 3.x):
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x00 | 8 | creation time |
 * | 0x08 | 8 | last data modification time |
 * | 0x10 | 8 | last MFT record change time |
 * | 0x18 | 8 | last access time |
 * | 0x20 | 4 | FILE_ATTRIBUTE_* flags |
 */
export interface StandardInformation {
  birthtimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  atimeMs: number;
  fileAttributes: number;
}

export function parseStandardInformation(value: Uint8Array, record: number): StandardInformation {
  if (value.length < 0x24) throw fsCorrupt('ntfs', `MFT record ${record}: $STANDARD_INFORMATION of ${value.length} bytes`);
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return {
    birthtimeMs: ntfsTimeToMs(view, 0x00),
    mtimeMs: ntfsTimeToMs(view, 0x08),
    ctimeMs: ntfsTimeToMs(view, 0x10),
    atimeMs: ntfsTimeToMs(view, 0x18),
    fileAttributes: view.getUint32(0x20, true),
  };
}

/** $FILE_NAME namespaces: which rules the name follows. */
export const Namespace = { POSIX: 0, WIN32: 1, DOS: 2, WIN32_AND_DOS: 3 } as const;

/**
 * $FILE_NAME (type 0x30, resident; also the key of every directory index entry):
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x00 | 8 | file reference of the parent directory |
 * | 0x08 | 32 | four times (as in $STANDARD_INFORMATION, updated less often) |
 * | 0x28 | 8 | allocated size |
 * | 0x30 | 8 | data size (often stale: the record's $DATA is authoritative) |
 * | 0x38 | 4 | FILE_ATTRIBUTE_* flags (0x10000000: the entry is a directory) |
 * | 0x3C | 4 | EA size or reparse tag |
 * | 0x40 | 1 | name length in UTF-16 units |
 * | 0x41 | 1 | namespace: 0 POSIX, 1 Win32, 2 DOS (8.3), 3 Win32 and DOS |
 * | 0x42 | 2n | the name, UTF-16LE |
 */
export interface FileName {
  parent: FileReference;
  name: string;
  /** The name's UTF-16 code units, as the index collates them. */
  units: Uint16Array;
  namespace: number;
  fileAttributes: number;
}

export const FILE_NAME_HEADER = 0x42;

export function parseFileName(value: Uint8Array, what: string): FileName {
  if (value.length < FILE_NAME_HEADER) throw fsCorrupt('ntfs', `${what}: $FILE_NAME of ${value.length} bytes`);
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const length = value[0x40]!;
  if (FILE_NAME_HEADER + length * 2 > value.length) throw fsCorrupt('ntfs', `${what}: file name runs past its attribute`);
  const raw = value.subarray(FILE_NAME_HEADER, FILE_NAME_HEADER + length * 2);
  const units = new Uint16Array(length);
  for (let i = 0; i < length; i++) units[i] = raw[i * 2]! | (raw[i * 2 + 1]! << 8);
  return {
    parent: readFileReference(view, 0),
    name: decodeUtf16(raw),
    units,
    namespace: value[0x41]!,
    fileAttributes: view.getUint32(0x38, true),
  };
}
