import { GPT_TYPE_DESCRIPTIONS } from './gpt-types.js';
import { formatGuid, u64 } from './read-bytes.js';
import type { TableEntry } from './table-entry.js';

/**
 * A GPT partition entry (UEFI 2.10 §5.3.3), `entrySize` bytes (≥ 128) each, in the array the
 * header points to. Little-endian:
 *   0  16  partition type GUID (all zero: unused entry)
 *  16  16  unique partition GUID
 *  32   8  first LBA
 *  40   8  last LBA (inclusive)
 *  48   8  attributes
 *  56  72  name, UTF-16LE, NUL-padded (36 code units)
 * Partitions are numbered by entry index, from 1 (as Linux numbers them).
 */
const NAME_AT = 56;
const NAME_BYTES = 72;

/** The used entries of an entry array, as table entries in bytes. */
export function parseGptEntries(array: Buffer, entrySize: number, entryCount: number, sectorSize: number): TableEntry[] {
  const entries: TableEntry[] = [];
  for (let index = 0; index < entryCount && (index + 1) * entrySize <= array.length; index++) {
    const at = index * entrySize;
    const entry = array.subarray(at, at + entrySize);
    if (entry.subarray(0, 16).every((b) => b === 0)) continue;
    const type = formatGuid(entry, 0);
    const firstLba = u64(entry, 32);
    const lastLba = u64(entry, 40);
    const warnings: string[] = [];
    let size = (lastLba - firstLba + 1) * sectorSize;
    if (!(lastLba >= firstLba)) {
      warnings.push(`its last sector (${lastLba}) lies before its first (${firstLba})`);
      size = 0;
    }
    entries.push({
      number: index + 1,
      start: firstLba * sectorSize,
      size,
      partitionType: type,
      typeDescription: GPT_TYPE_DESCRIPTIONS[type] ?? 'unknown',
      label: decodeName(entry.subarray(NAME_AT, NAME_AT + NAME_BYTES)),
      uuid: formatGuid(entry, 16),
      warnings,
    });
  }
  return entries;
}

/** UTF-16LE up to the first NUL code unit. */
function decodeName(bytes: Buffer): string {
  let end = 0;
  while (end + 1 < bytes.length && (bytes[end] !== 0 || bytes[end + 1] !== 0)) end += 2;
  return bytes.toString('utf16le', 0, end);
}
