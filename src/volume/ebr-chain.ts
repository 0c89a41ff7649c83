import type { BlockDevice } from '../blockdev/index.js';
import { EXTENDED_TYPES, MBR_SECTOR, MBR_TYPE_DESCRIPTIONS, isUsed, mbrTypeText, parseMbr } from './mbr.js';
import { readClipped } from './read-bytes.js';
import type { TableEntry } from './table-entry.js';

/**
 * Logical partitions: an extended partition starts with an extended boot record (EBR), laid
 * out like an MBR (see mbr.ts). In each EBR:
 * - an entry of a non-extended type is a logical partition, its LBA relative to this EBR;
 * - an entry of an extended type links to the next EBR, its LBA relative to the start of the
 *   extended partition (the one in the MBR);
 * - the chain ends at an EBR without a link.
 * Logical partitions are numbered from 5 in chain order, counting only used entries (as Linux).
 * A hostile chain may loop or never end: EBRs already visited end it, and so does
 * {@link MAX_EBRS}, each with a warning.
 */
export const MAX_EBRS = 256;

/** Walks the EBR chain of the extended partition at `extendedLba`, `extendedSectors` long. */
export async function readLogicalPartitions(
  disk: BlockDevice,
  extendedLba: number,
  extendedSectors: number,
  firstNumber = 5,
): Promise<{ entries: TableEntry[]; warnings: string[] }> {
  const entries: TableEntry[] = [];
  const warnings: string[] = [];
  const visited = new Set<number>();
  let ebrLba = extendedLba;
  let number = firstNumber;
  for (;;) {
    if (visited.has(ebrLba)) {
      warnings.push(`the chain of logical partitions loops back to the EBR at sector ${ebrLba}: stopped there`);
      break;
    }
    if (visited.size >= MAX_EBRS) {
      warnings.push(`more than ${MAX_EBRS} logical partitions: the rest are not listed`);
      break;
    }
    visited.add(ebrLba);
    if (ebrLba < extendedLba || ebrLba >= extendedLba + extendedSectors) {
      warnings.push(`an EBR link points to sector ${ebrLba}, outside the extended partition: the chain stops there`);
      break;
    }
    const sector = await readClipped(disk, ebrLba * MBR_SECTOR, MBR_SECTOR);
    const ebr = parseMbr(sector);
    if (ebr === undefined) {
      warnings.push(`the EBR at sector ${ebrLba} is not a valid boot record: the chain stops there`);
      break;
    }
    let next: number | undefined;
    for (const entry of ebr) {
      if (!isUsed(entry)) continue;
      if (EXTENDED_TYPES.has(entry.type)) {
        next ??= extendedLba + entry.firstLba;
        continue;
      }
      const start = ebrLba + entry.firstLba;
      const partitionWarnings: string[] = [];
      if (start < extendedLba || start + entry.sectors > extendedLba + extendedSectors) {
        partitionWarnings.push('lies (partly) outside its extended partition');
      }
      entries.push({
        number: number++,
        start: start * MBR_SECTOR,
        size: entry.sectors * MBR_SECTOR,
        partitionType: mbrTypeText(entry.type),
        typeDescription: MBR_TYPE_DESCRIPTIONS[entry.type] ?? 'unknown',
        warnings: partitionWarnings,
      });
    }
    if (next === undefined) break;
    ebrLba = next;
  }
  return { entries, warnings };
}
