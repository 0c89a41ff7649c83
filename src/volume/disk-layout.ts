import type { BlockDevice } from '../blockdev/index.js';
import { filesystemBootSector } from './boot-sector.js';
import { readLogicalPartitions } from './ebr-chain.js';
import { detectEncryption } from './encryption.js';
import { readGpt } from './gpt.js';
import { EXTENDED_TYPES, GPT_PROTECTIVE_TYPE, MBR_SECTOR, MBR_TYPE_DESCRIPTIONS, isUsed, mbrTypeText, parseMbr } from './mbr.js';
import { readClipped } from './read-bytes.js';
import type { PartitionTable, TableEntry } from './table-entry.js';

/** What a disk holds at the top: a partition table, or one volume over the whole disk. */
export type DiskLayout = { kind: 'table'; table: PartitionTable } | { kind: 'whole-disk'; warnings: string[] };

/**
 * Decides what sector 0 (and LBA 1) of a disk are, in this order:
 * 1. an encrypted container or a FAT/NTFS/exFAT boot sector → the whole disk is one volume
 *    (a boot sector also ends in 55 AA, and mformat writes a partition entry into it);
 * 2. an MBR with a protective 0xEE entry → the GPT (primary, else backup);
 * 3. an MBR → its primary partitions, extended partitions and their logical partitions;
 * 4. a GPT header without a protective MBR → the GPT, with a warning;
 * 5. anything else → the whole disk (its filesystem, if any, is found later by its superblock).
 */
export async function readDiskLayout(disk: BlockDevice): Promise<DiskLayout> {
  const sector0 = await readClipped(disk, 0, MBR_SECTOR);
  if (detectEncryption(sector0) !== undefined || filesystemBootSector(sector0) !== undefined) return { kind: 'whole-disk', warnings: [] };
  const mbr = parseMbr(sector0);
  if (mbr?.some((e) => e.type === GPT_PROTECTIVE_TYPE)) {
    const gpt = await readGpt(disk);
    if (gpt !== undefined) return { kind: 'table', table: gpt };
    return { kind: 'whole-disk', warnings: ['a protective MBR announces a GPT, but no GPT header was found'] };
  }
  if (mbr === undefined || !mbr.some(isUsed)) {
    const gpt = await readGpt(disk);
    if (gpt !== undefined) {
      gpt.warnings.push('the disk has a GPT but no protective MBR');
      return { kind: 'table', table: gpt };
    }
    return { kind: 'whole-disk', warnings: mbr === undefined ? [] : ['the MBR lists no partition'] };
  }
  const entries: TableEntry[] = [];
  const warnings: string[] = [];
  let nextLogical = 5;
  for (const entry of mbr) {
    if (!isUsed(entry)) continue;
    const extended = EXTENDED_TYPES.has(entry.type);
    const partitionWarnings = entry.firstLba === 0 ? ['starts at sector 0, over the partition table itself'] : [];
    const tableEntry: TableEntry = {
      number: entry.slot + 1,
      start: entry.firstLba * MBR_SECTOR,
      size: entry.sectors * MBR_SECTOR,
      partitionType: mbrTypeText(entry.type),
      typeDescription: MBR_TYPE_DESCRIPTIONS[entry.type] ?? 'unknown',
      ...(extended ? { container: true } : {}),
      warnings: partitionWarnings,
    };
    entries.push(tableEntry);
    if (extended) {
      const logical = await readLogicalPartitions(disk, entry.firstLba, entry.sectors, nextLogical);
      entries.push(...logical.entries);
      tableEntry.warnings.push(...logical.warnings);
      nextLogical += logical.entries.length;
    }
  }
  entries.sort((a, b) => a.number - b.number);
  return { kind: 'table', table: { scheme: 'mbr', entries, warnings } };
}
