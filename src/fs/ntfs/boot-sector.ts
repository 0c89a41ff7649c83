import { fsCorrupt } from '../fs-errors.js';

/**
 * The NTFS boot sector ($Boot, sector 0 of the volume; a copy sits in the volume's last
 * sector). Little-endian. Only the fields NTFS uses are read:
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x03 | 8 | OEM id `"NTFS    "` (the magic) |
 * | 0x0B | 2 | bytes per sector (256 … 4096, a power of two) |
 * | 0x0D | 1 | sectors per cluster: 1 … 128, or above 0x80 it encodes 2^(256 − value) (clusters of 128 KiB … 2 MiB) |
 * | 0x0E | 2 | reserved sectors (0 on NTFS) |
 * | 0x10 | 1 | number of FATs (0 on NTFS) |
 * | 0x11 | 2 | root entries (0 on NTFS) |
 * | 0x13 | 2 | 16-bit sector count (0 on NTFS) |
 * | 0x16 | 2 | sectors per FAT (0 on NTFS) |
 * | 0x28 | 8 | total sectors of the volume |
 * | 0x30 | 8 | LCN (cluster number) of $MFT |
 * | 0x38 | 8 | LCN of $MFTMirr |
 * | 0x40 | 1 | MFT record size: signed; > 0 counts clusters, ≤ 0 means 2^(−value) bytes |
 * | 0x44 | 1 | index block size, encoded the same way |
 * | 0x48 | 8 | volume serial number |
 * | 0x1FE | 2 | 0x55 0xAA |
 */
export interface BootSector {
  bytesPerSector: number;
  clusterSize: number;
  totalSectors: number;
  /** Bytes of the volume (total sectors × bytes per sector). */
  volumeSize: number;
  totalClusters: number;
  mftLcn: number;
  mftMirrLcn: number;
  mftRecordSize: number;
  indexBlockSize: number;
  /** The 64-bit serial as 16 upper-case hex digits (as blkid prints it). */
  serial: string;
}

export const BOOT_SECTOR_SIZE = 512;
const OEM_ID = 'NTFS    ';
/** Bigger clusters exist nowhere (Windows allows up to 2 MiB). */
const MAX_CLUSTER_SIZE = 2 * 1024 * 1024;

/** Parses and checks a boot sector; throws `E_FS_CORRUPT` naming the first inconsistency. */
export function parseBootSector(bytes: Uint8Array): BootSector {
  const problem = bootSectorProblem(bytes);
  if (typeof problem === 'string') throw fsCorrupt('ntfs', `boot sector: ${problem}`, { offset: 0 });
  return problem;
}

/** True when `bytes` is an NTFS boot sector with consistent geometry. */
export function isNtfsBootSector(bytes: Uint8Array): boolean {
  return typeof bootSectorProblem(bytes) !== 'string';
}

/** Why a sector with the `NTFS    ` signature is not a usable boot sector; undefined without the signature, or when it is one. */
export function ntfsBootSectorDamage(bytes: Uint8Array): string | undefined {
  const problem = bootSectorProblem(bytes);
  return typeof problem === 'string' && problem !== 'no NTFS signature' && problem !== 'too short' ? `boot sector: ${problem}` : undefined;
}

function bootSectorProblem(bytes: Uint8Array): BootSector | string {
  if (bytes.length < BOOT_SECTOR_SIZE) return 'too short';
  const view = new DataView(bytes.buffer, bytes.byteOffset, BOOT_SECTOR_SIZE);
  if (String.fromCharCode(...bytes.subarray(3, 11)) !== OEM_ID) return 'no NTFS signature';
  if (view.getUint16(0x1fe, true) !== 0xaa55) return 'no 0x55AA end marker';
  const bytesPerSector = view.getUint16(0x0b, true);
  if (bytesPerSector < 256 || bytesPerSector > 4096 || (bytesPerSector & (bytesPerSector - 1)) !== 0) return `bad sector size ${bytesPerSector}`;
  const spcCode = view.getUint8(0x0d);
  let sectorsPerCluster: number;
  if (spcCode === 0) return 'zero sectors per cluster';
  if (spcCode <= 0x80) {
    if ((spcCode & (spcCode - 1)) !== 0) return `bad sectors per cluster ${spcCode}`;
    sectorsPerCluster = spcCode;
  } else {
    const shift = 256 - spcCode;
    if (shift > 12) return `bad sectors per cluster code 0x${spcCode.toString(16)}`;
    sectorsPerCluster = 2 ** shift;
  }
  const clusterSize = sectorsPerCluster * bytesPerSector;
  if (clusterSize > MAX_CLUSTER_SIZE) return `cluster size ${clusterSize} too big`;
  if (view.getUint16(0x0e, true) !== 0 || view.getUint8(0x10) !== 0 || view.getUint16(0x11, true) !== 0 || view.getUint16(0x13, true) !== 0 || view.getUint16(0x16, true) !== 0) {
    return 'FAT fields are not zero';
  }
  const totalSectors = readU64(view, 0x28);
  const mftLcn = readU64(view, 0x30);
  const mftMirrLcn = readU64(view, 0x38);
  if (totalSectors === undefined || mftLcn === undefined || mftMirrLcn === undefined) return 'a 64-bit field is beyond 2^53';
  const volumeSize = totalSectors * bytesPerSector;
  if (!Number.isSafeInteger(volumeSize) || totalSectors === 0) return `bad sector count ${totalSectors}`;
  const totalClusters = Math.floor(volumeSize / clusterSize);
  if (mftLcn === 0 || mftLcn >= totalClusters) return `$MFT cluster ${mftLcn} outside the volume`;
  if (mftMirrLcn === 0 || mftMirrLcn >= totalClusters) return `$MFTMirr cluster ${mftMirrLcn} outside the volume`;
  const mftRecordSize = decodeSize(view.getInt8(0x40), clusterSize);
  const indexBlockSize = decodeSize(view.getInt8(0x44), clusterSize);
  const sane = (size: number | undefined): size is number => size !== undefined && size >= 512 && size <= 65536 && (size & (size - 1)) === 0;
  if (!sane(mftRecordSize)) return `bad MFT record size ${mftRecordSize}`;
  if (!sane(indexBlockSize)) return `bad index block size ${indexBlockSize}`;
  const serial = [...bytes.subarray(0x48, 0x50)].reverse().map((b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
  return { bytesPerSector, clusterSize, totalSectors, volumeSize, totalClusters, mftLcn, mftMirrLcn, mftRecordSize, indexBlockSize, serial };
}

/** The record/index size encoding: positive = clusters, negative = 2^(−value) bytes. */
function decodeSize(code: number, clusterSize: number): number | undefined {
  if (code > 0) return code * clusterSize;
  if (code < -31 || code === 0) return undefined;
  return 2 ** -code;
}

function readU64(view: DataView, at: number): number | undefined {
  const value = view.getBigUint64(at, true);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(value);
}
