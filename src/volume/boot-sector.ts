/**
 * Telling a filesystem's boot sector from a master boot record: both are a 512-byte sector 0
 * ending in 55 AA. A FAT, NTFS or exFAT filesystem written over a whole disk starts with a
 * boot sector (and mformat even writes a one-entry "partition table" into it, starting at
 * LBA 0), so sector 0 is checked for a boot sector first.
 *
 * Boot sector fields read (offsets in sector 0):
 *   0   3  jump: EB xx 90 or E9 xx xx
 *   3   8  OEM id: "NTFS    " (NTFS), "EXFAT   " (exFAT), "-FVE-FS-" (BitLocker, see encryption.ts)
 *  11   2  bytes per sector (FAT BPB): 512, 1024, 2048 or 4096
 *  13   1  sectors per cluster: a power of two, 1..128
 *  14   2  reserved sectors: at least 1
 *  16   1  number of FATs: 1 or 2
 *  21   1  media descriptor: F0 or F8..FF
 *  54   8  FAT12/16 filesystem type, "FAT12   " / "FAT16   " / "FAT     " (informational)
 *  82   8  FAT32 filesystem type, "FAT32   "
 * 510   2  55 AA
 */

/** The filesystem whose boot sector `sector` (≥ 512 bytes) is, or undefined for anything else. */
export function filesystemBootSector(sector: Buffer): 'fat' | 'ntfs' | 'exfat' | undefined {
  if (sector.length < 512 || sector[510] !== 0x55 || sector[511] !== 0xaa) return undefined;
  const oem = sector.toString('latin1', 3, 11);
  if (oem === 'NTFS    ') return 'ntfs';
  if (oem === 'EXFAT   ') return 'exfat';
  const jump = (sector[0] === 0xeb && sector[2] === 0x90) || sector[0] === 0xe9;
  const bytesPerSector = sector.readUInt16LE(11);
  const perCluster = sector[13] ?? 0;
  const fats = sector[16] ?? 0;
  const media = sector[21] ?? 0;
  const bpb = jump && [512, 1024, 2048, 4096].includes(bytesPerSector) && perCluster > 0 && (perCluster & (perCluster - 1)) === 0 &&
    sector.readUInt16LE(14) >= 1 && (fats === 1 || fats === 2) && (media === 0xf0 || media >= 0xf8);
  const typeName = sector.toString('latin1', 54, 57) === 'FAT' || sector.toString('latin1', 82, 87) === 'FAT32';
  return bpb && typeName ? 'fat' : undefined;
}
