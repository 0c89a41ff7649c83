/**
 * The master boot record (and the extended boot records of logical partitions, which have
 * the same layout), one 512-byte sector:
 *   0    446  boot code (ignored)
 *   446  4×16 partition entries:
 *          +0  1  status: 0x00, or 0x80 (bootable); anything else means this is no MBR
 *          +1  3  CHS of the first sector (ignored)
 *          +4  1  partition type (0x00: unused slot)
 *          +5  3  CHS of the last sector (ignored)
 *          +8  4  LBA of the first sector, u32 LE (in an EBR: relative, see ebr-chain.ts)
 *          +12 4  number of sectors, u32 LE
 *   510  2    signature 55 AA
 * Sectors are 512 bytes (MBR addresses are in 512-byte units on every disk Coffer reads).
 */
export const MBR_SECTOR = 512;
const ENTRIES_AT = 446;
const ENTRY_SIZE = 16;

/** Extended partition types: 0x05 (CHS), 0x0F (LBA), 0x85 (Linux extended). */
export const EXTENDED_TYPES: ReadonlySet<number> = new Set([0x05, 0x0f, 0x85]);
/** The type of the one partition of a protective MBR, which announces a GPT. */
export const GPT_PROTECTIVE_TYPE = 0xee;

export interface MbrEntry {
  /** 0..3 */
  slot: number;
  status: number;
  type: number;
  firstLba: number;
  sectors: number;
}

/** Whether the sector ends in 55 AA. */
export function hasBootSignature(sector: Buffer): boolean {
  return sector.length >= MBR_SECTOR && sector[510] === 0x55 && sector[511] === 0xaa;
}

/**
 * The four entries of an MBR or EBR, used or not, or undefined when the sector is no
 * partition table (no 55 AA, or a status byte other than 0x00/0x80, as Linux checks).
 */
export function parseMbr(sector: Buffer): MbrEntry[] | undefined {
  if (!hasBootSignature(sector)) return undefined;
  const entries: MbrEntry[] = [];
  for (let slot = 0; slot < 4; slot++) {
    const at = ENTRIES_AT + slot * ENTRY_SIZE;
    const status = sector[at] ?? 0;
    if (status !== 0 && status !== 0x80) return undefined;
    entries.push({ slot, status, type: sector[at + 4] ?? 0, firstLba: sector.readUInt32LE(at + 8), sectors: sector.readUInt32LE(at + 12) });
  }
  return entries;
}

/** Whether an entry describes a partition (a type and a size). */
export function isUsed(entry: MbrEntry): boolean {
  return entry.type !== 0 && entry.sectors !== 0;
}

/** `0x83` → `0x83`: MBR types as text. */
export function mbrTypeText(type: number): string {
  return `0x${type.toString(16).padStart(2, '0')}`;
}

/** Short descriptions of common MBR partition types. */
export const MBR_TYPE_DESCRIPTIONS: Readonly<Record<number, string>> = {
  0x01: 'FAT12', 0x04: 'FAT16 <32M', 0x05: 'extended', 0x06: 'FAT16', 0x07: 'NTFS/exFAT/HPFS',
  0x0b: 'FAT32', 0x0c: 'FAT32 (LBA)', 0x0e: 'FAT16 (LBA)', 0x0f: 'extended', 0x11: 'hidden FAT12',
  0x12: 'Compaq diagnostics', 0x14: 'hidden FAT16 <32M', 0x16: 'hidden FAT16', 0x17: 'hidden NTFS',
  0x1b: 'hidden FAT32', 0x1c: 'hidden FAT32 (LBA)', 0x1e: 'hidden FAT16 (LBA)', 0x27: 'Windows recovery',
  0x42: 'Windows dynamic disk', 0x82: 'Linux swap', 0x83: 'Linux', 0x85: 'extended', 0x8e: 'Linux LVM',
  0xa5: 'FreeBSD', 0xa6: 'OpenBSD', 0xa9: 'NetBSD', 0xaf: 'HFS/HFS+', 0xbf: 'Solaris', 0xee: 'GPT protective',
  0xef: 'EFI System', 0xfd: 'Linux RAID',
};
