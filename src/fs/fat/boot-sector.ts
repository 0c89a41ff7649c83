import { CofferError } from '../../errors/index.js';
import { fsCorrupt, fsUnsupported } from '../fs-errors.js';

/**
 * The FAT boot sector (BIOS parameter block), sector 0 of the volume, as the Microsoft FAT
 * specification (fatgen103, "FAT: General Overview of On-Disk Format") lays it out. All
 * integers little-endian.
 *
 * | offset | size | field            | meaning                                                   |
 * |-------:|-----:|------------------|-----------------------------------------------------------|
 * |      0 |    3 | BS_jmpBoot       | `EB xx 90` or `E9 xx xx`                                  |
 * |      3 |    8 | BS_OEMName       | informational                                             |
 * |     11 |    2 | BPB_BytsPerSec   | 512, 1024, 2048 or 4096                                   |
 * |     13 |    1 | BPB_SecPerClus   | power of two, 1..128                                      |
 * |     14 |    2 | BPB_RsvdSecCnt   | sectors before the first FAT, ≥ 1                         |
 * |     16 |    1 | BPB_NumFATs      | copies of the FAT, ≥ 1                                    |
 * |     17 |    2 | BPB_RootEntCnt   | 32-byte entries of the fixed root directory (0 on FAT32)  |
 * |     19 |    2 | BPB_TotSec16     | total sectors, or 0 when BPB_TotSec32 holds it            |
 * |     21 |    1 | BPB_Media        | 0xF0 or 0xF8..0xFF                                        |
 * |     22 |    2 | BPB_FATSz16      | sectors per FAT, 0 on FAT32 (then BPB_FATSz32)            |
 * |     24 |    4 | geometry         | sectors per track, heads (ignored)                        |
 * |     28 |    4 | BPB_HiddSec      | ignored                                                   |
 * |     32 |    4 | BPB_TotSec32     | total sectors when BPB_TotSec16 is 0                      |
 * FAT12/16 extended BPB:
 * |     38 |    1 | BS_BootSig       | 0x29 when the next three fields are present               |
 * |     39 |    4 | BS_VolID         | volume serial number                                      |
 * |     43 |   11 | BS_VolLab        | volume label (the root directory's label entry wins)      |
 * FAT32 extended BPB:
 * |     36 |    4 | BPB_FATSz32      | sectors per FAT                                           |
 * |     40 |    2 | BPB_ExtFlags     | bit 7: only one FAT is active, bits 0-3: which one         |
 * |     42 |    2 | BPB_FSVer        | 0 (any other version is not supported)                    |
 * |     44 |    4 | BPB_RootClus     | first cluster of the root directory                       |
 * |     48 |    4 | FSInfo, backup   | ignored (FSInfo's free counts are hints only)             |
 * |     66 |    1 | BS_BootSig       | 0x29 when the next three fields are present               |
 * |     67 |    4 | BS_VolID         | volume serial number                                      |
 * |     71 |   11 | BS_VolLab        | volume label                                              |
 * |    510 |    2 | signature        | 0x55 0xAA                                                 |
 *
 * Derived: RootDirSectors = ceil(RootEntCnt × 32 / BytsPerSec); FirstDataSector = RsvdSecCnt +
 * NumFATs × FATSz + RootDirSectors; CountofClusters = floor((TotSec − FirstDataSector) /
 * SecPerClus). The FAT type is decided by CountofClusters alone (the spec's rule; the
 * BS_FilSysType string is informational): < 4085 FAT12, < 65525 FAT16, else FAT32. Clusters
 * are numbered from 2; cluster c starts at FirstDataSector + (c − 2) × SecPerClus.
 */
export const BOOT_SECTOR_SIZE = 512;

/** The FAT variants, by the width of a FAT entry. */
export type FatKind = 'fat12' | 'fat16' | 'fat32';

/** The geometry of a FAT volume, all in bytes except cluster numbers and counts. */
export interface FatGeometry {
  readonly kind: FatKind;
  readonly bytesPerSector: number;
  readonly clusterSize: number;
  /** Byte offset of the FAT in use (the active one on FAT32 with mirroring disabled). */
  readonly fatOffset: number;
  /** Bytes of one FAT. */
  readonly fatBytes: number;
  /** FAT12/16: byte offset and size of the fixed root directory (0 on FAT32). */
  readonly rootDirOffset: number;
  readonly rootDirBytes: number;
  /** FAT32: first cluster of the root directory (0 on FAT12/16). */
  readonly rootCluster: number;
  /** Byte offset of cluster 2. */
  readonly dataOffset: number;
  /** Clusters of the data area: valid cluster numbers are 2 .. clusterCount + 1. */
  readonly clusterCount: number;
  /** Bytes the filesystem spans (total sectors × sector size). */
  readonly volumeBytes: number;
  /** `XXXX-XXXX`, or '' without an extended boot signature. */
  readonly serial: string;
  /** BS_VolLab with trailing spaces removed ('' for none or `NO NAME`), as raw bytes. */
  readonly bpbLabel: Uint8Array;
}

const FAT12_MAX_CLUSTERS = 4084;
const FAT16_MAX_CLUSTERS = 65524;
/** FAT32 entries are 28 bits and the top values are reserved (0x0FFFFFF7 bad, ≥ 0x0FFFFFF8 end). */
const FAT32_MAX_CLUSTERS = 0x0ffffff5 - 2;

/**
 * Parses and validates the boot sector (`sector` holds at least its first 512 bytes) of a
 * volume of `deviceSize` bytes. Throws `E_FS_CORRUPT` when it is not a consistent FAT boot
 * sector, `E_FS_UNSUPPORTED` for a FAT32 version other than 0.
 */
export function parseBootSector(sector: Uint8Array, deviceSize: number): FatGeometry {
  if (sector.length < BOOT_SECTOR_SIZE) throw fsCorrupt('fat', `boot sector is ${sector.length} bytes`);
  const view = new DataView(sector.buffer, sector.byteOffset, BOOT_SECTOR_SIZE);
  const u8 = (at: number): number => view.getUint8(at);
  const u16 = (at: number): number => view.getUint16(at, true);
  const u32 = (at: number): number => view.getUint32(at, true);
  const bad = (what: string): CofferError => fsCorrupt('fat', `boot sector: ${what}`, { offset: 0 });

  const jump = u8(0);
  if (!((jump === 0xeb && u8(2) === 0x90) || jump === 0xe9)) throw bad(`no jump instruction (${hex(jump)})`);
  if (u8(510) !== 0x55 || u8(511) !== 0xaa) throw bad('no 0x55AA signature');
  const bytesPerSector = u16(11);
  if (![512, 1024, 2048, 4096].includes(bytesPerSector)) throw bad(`${bytesPerSector} bytes per sector`);
  const sectorsPerCluster = u8(13);
  if (sectorsPerCluster === 0 || (sectorsPerCluster & (sectorsPerCluster - 1)) !== 0) throw bad(`${sectorsPerCluster} sectors per cluster`);
  const reservedSectors = u16(14);
  if (reservedSectors === 0) throw bad('no reserved sector');
  const fatCount = u8(16);
  if (fatCount === 0 || fatCount > 4) throw bad(`${fatCount} FATs`);
  const rootEntries = u16(17);
  const media = u8(21);
  if (media !== 0xf0 && media < 0xf8) throw bad(`media byte ${hex(media)}`);
  const totalSectors = u16(19) !== 0 ? u16(19) : u32(32);
  if (totalSectors === 0) throw bad('no sectors');
  const fat16Size = u16(22);
  const fatSectors = fat16Size !== 0 ? fat16Size : u32(36);
  if (fatSectors === 0) throw bad('FATs of 0 sectors');

  const rootDirSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const firstDataSector = reservedSectors + fatCount * fatSectors + rootDirSectors;
  if (firstDataSector >= totalSectors) throw bad(`data area starts at sector ${firstDataSector} of ${totalSectors}`);
  const clusterCount = Math.floor((totalSectors - firstDataSector) / sectorsPerCluster);
  if (clusterCount === 0) throw bad('no data cluster');
  const kind: FatKind = clusterCount <= FAT12_MAX_CLUSTERS ? 'fat12' : clusterCount <= FAT16_MAX_CLUSTERS ? 'fat16' : 'fat32';
  if (clusterCount > FAT32_MAX_CLUSTERS) throw bad(`${clusterCount} clusters`);

  const fatBytes = fatSectors * bytesPerSector;
  const entryBits = kind === 'fat12' ? 12 : kind === 'fat16' ? 16 : 32;
  if (Math.floor((fatBytes * 8) / entryBits) < clusterCount + 2) throw bad(`a FAT of ${fatBytes} bytes cannot map ${clusterCount} clusters`);
  const volumeBytes = totalSectors * bytesPerSector;
  if (volumeBytes > deviceSize) throw bad(`the filesystem spans ${volumeBytes} bytes, its device ${deviceSize}`);

  let activeFat = 0;
  let rootCluster = 0;
  let extended = 38;
  if (kind === 'fat32') {
    if (fat16Size !== 0 || rootEntries !== 0) throw bad(`FAT32 by its ${clusterCount} clusters, but with a FAT12/16 layout`);
    const extFlags = u16(40);
    if (extFlags & 0x80) activeFat = extFlags & 0x0f;
    if (activeFat >= fatCount) throw bad(`active FAT ${activeFat} of ${fatCount}`);
    const version = u16(42);
    if (version !== 0) throw fsUnsupported('fat', `FAT32 version ${version >> 8}.${version & 0xff}`);
    rootCluster = u32(44);
    if (rootCluster < 2 || rootCluster > clusterCount + 1) throw bad(`root directory at cluster ${rootCluster}`);
    extended = 66;
  } else if (rootEntries === 0) {
    throw bad(`${kind.toUpperCase()} by its ${clusterCount} clusters, but without a root directory`);
  }

  const hasExtended = u8(extended) === 0x29;
  const serialNumber = hasExtended ? u32(extended + 1) : undefined;
  let label: Uint8Array = hasExtended ? sector.slice(extended + 5, extended + 16) : new Uint8Array(0);
  label = trimLabel(label);
  if (asciiOf(label) === 'NO NAME') label = new Uint8Array(0);

  return {
    kind,
    bytesPerSector,
    clusterSize: sectorsPerCluster * bytesPerSector,
    fatOffset: (reservedSectors + activeFat * fatSectors) * bytesPerSector,
    fatBytes,
    rootDirOffset: kind === 'fat32' ? 0 : (reservedSectors + fatCount * fatSectors) * bytesPerSector,
    rootDirBytes: kind === 'fat32' ? 0 : rootEntries * 32,
    rootCluster,
    dataOffset: firstDataSector * bytesPerSector,
    clusterCount,
    volumeBytes,
    serial: serialNumber === undefined ? '' : formatSerial(serialNumber),
    bpbLabel: label,
  };
}

/** Label bytes without trailing spaces or NULs. */
export function trimLabel(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0)) end--;
  return bytes.subarray(0, end);
}

/** A serial number as DOS prints it: `1234-ABCD`. */
function formatSerial(serial: number): string {
  const text = serial.toString(16).toUpperCase().padStart(8, '0');
  return `${text.slice(0, 4)}-${text.slice(4)}`;
}

function asciiOf(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(2, '0')}`;
}
