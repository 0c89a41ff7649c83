import type { BlockDevice } from '../blockdev/index.js';
import { crc32 } from './checksums.js';
import { parseGptEntries } from './gpt-entries.js';
import { GPT_SIGNATURE, parseGptHeader, type GptHeader } from './gpt-header.js';
import { readClipped } from './read-bytes.js';
import type { PartitionTable } from './table-entry.js';

/**
 * Reads a GPT: the primary header at LBA 1 and its entry array, each checked by its CRC-32;
 * when either is damaged, the backup header at the disk's last LBA and its array (the
 * partitions then carry a warning saying so). Sectors of 512 bytes, or 4096 when the header is
 * found at byte 4096 instead of 512. Returns undefined when no header has a GPT signature at
 * all, and a table with no entries and a warning when both copies are damaged.
 */
export async function readGpt(disk: BlockDevice): Promise<PartitionTable | undefined> {
  const sectorSize = await detectSectorSize(disk);
  if (sectorSize === undefined) return undefined;
  const lastLba = Math.floor(disk.size / sectorSize) - 1;
  const primary = await readCopy(disk, 1, sectorSize);
  if ('header' in primary) return { scheme: 'gpt', entries: primary.entries, warnings: [] };
  const backup = await readCopy(disk, lastLba, sectorSize);
  if ('header' in backup) {
    const warning = `the primary GPT is damaged (${primary.invalid}): read from the backup header at LBA ${lastLba}`;
    return { scheme: 'gpt', entries: backup.entries, warnings: [warning] };
  }
  return {
    scheme: 'gpt',
    entries: [],
    warnings: [`both GPT copies are damaged: primary (${primary.invalid}), backup at LBA ${lastLba} (${backup.invalid})`],
  };
}

async function detectSectorSize(disk: BlockDevice): Promise<512 | 4096 | undefined> {
  for (const size of [512, 4096] as const) {
    const signature = await readClipped(disk, size, 8);
    if (signature.toString('latin1') === GPT_SIGNATURE) return size;
  }
  return undefined;
}

type Copy = { header: GptHeader; entries: PartitionTable['entries'] } | { invalid: string };

async function readCopy(disk: BlockDevice, lba: number, sectorSize: number): Promise<Copy> {
  if (lba < 1) return { invalid: 'the disk is too small' };
  const header = parseGptHeader(await readClipped(disk, lba * sectorSize, sectorSize), lba);
  if ('invalid' in header) return header;
  const length = header.entryCount * header.entrySize;
  const array = await readClipped(disk, header.entriesLba * sectorSize, length);
  if (array.length !== length) return { invalid: `the entry array at LBA ${header.entriesLba} lies beyond the disk's end` };
  if (crc32(array) !== header.entriesCrc) return { invalid: 'entry array checksum mismatch' };
  return { header, entries: parseGptEntries(array, header.entrySize, header.entryCount, sectorSize) };
}
