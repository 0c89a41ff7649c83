import { fsCorrupt, fsUnsupported } from '../fs-errors.js';
import { xfsCrcMatches } from './crc32c.js';

/**
 * The XFS superblock (struct xfs_dsb), at byte 0 of the filesystem and again at the start
 * of every allocation group (only the first is read). Big-endian except the CRC.
 *
 * | offset | size | field            | meaning                                              |
 * |-------:|-----:|------------------|------------------------------------------------------|
 * |      0 |    4 | magicnum         | `XFSB` (0x58465342)                                  |
 * |      4 |    4 | blocksize        | filesystem block size in bytes (512..65536)          |
 * |      8 |    8 | dblocks          | blocks in the data device                            |
 * |     16 |    8 | rblocks          | realtime blocks (0: no realtime device)              |
 * |     32 |   16 | uuid             | filesystem UUID                                      |
 * |     56 |    8 | rootino          | inode number of the root directory                   |
 * |     84 |    4 | agblocks         | blocks per allocation group (the last may be short)  |
 * |     88 |    4 | agcount          | number of allocation groups                          |
 * |    100 |    2 | versionnum       | low 4 bits: version (4 or 5); feature bits above     |
 * |    102 |    2 | sectsize         | sector size                                          |
 * |    104 |    2 | inodesize        | inode size (256..2048)                               |
 * |    106 |    2 | inopblock        | inodes per block                                     |
 * |    108 |   12 | fname            | volume label, NUL-padded                             |
 * |    120 |    1 | blocklog         | log2(blocksize)                                      |
 * |    121 |    1 | sectlog          | log2(sectsize)                                       |
 * |    122 |    1 | inodelog         | log2(inodesize)                                      |
 * |    123 |    1 | inopblog         | log2(inopblock)                                      |
 * |    124 |    1 | agblklog         | log2(agblocks) rounded up: bits of a block in an AG   |
 * |    192 |    1 | dirblklog        | log2(directory block size / blocksize)               |
 * |    200 |    4 | features2        | more feature bits (v4); bit 0x200 FTYPE on v4        |
 * |    216 |    4 | features_incompat| v5: 1 FTYPE, 2 SPINODES, 4 META_UUID, 8 BIGTIME,     |
 * |        |      |                  | 16 NEEDSREPAIR, 32 NREXT64                           |
 * |    224 |    4 | crc              | CRC-32C of the first sectsize bytes (little-endian)  |
 *
 * An inode number is `agno << (agblklog + inopblog) | agbno << inopblog | index`; a block
 * number in a block map is `agno << agblklog | agbno`; both lie at byte
 * `(agno * agblocks + agbno) * blocksize` (+ `index * inodesize`).
 */
export const SUPERBLOCK_BYTES = 264;
const XFS_MAGIC = 0x58465342;
const INCOMPAT_FTYPE = 1;
const INCOMPAT_SPINODES = 2;
const INCOMPAT_META_UUID = 4;
const INCOMPAT_BIGTIME = 8;
const INCOMPAT_NEEDSREPAIR = 16;
const INCOMPAT_NREXT64 = 32;
const INCOMPAT_KNOWN = INCOMPAT_FTYPE | INCOMPAT_SPINODES | INCOMPAT_META_UUID | INCOMPAT_BIGTIME | INCOMPAT_NEEDSREPAIR | INCOMPAT_NREXT64;
/** versionnum bit: names compare ASCII case-insensitively (mkfs -n version=ci). */
const VERSION_BORGBIT = 0x4000;

/** The superblock fields Coffer uses, checked for consistency. */
export interface XfsSuperblock {
  blockSize: number;
  blockLog: number;
  dataBlocks: number;
  uuid: string;
  label: string;
  rootIno: bigint;
  agBlocks: number;
  agCount: number;
  agBlockLog: number;
  inodeSize: number;
  inodeLog: number;
  inodesPerBlockLog: number;
  sectorSize: number;
  /** Directory block size in bytes (`blocksize << dirblklog`). */
  dirBlockSize: number;
  /** Directory entries carry a file type byte. */
  hasFtype: boolean;
  /** Names hash and compare ASCII case-insensitively. */
  asciiCi: boolean;
  /** Inodes may use 64-bit extent counters (per inode: di_flags2 NREXT64). */
  hasNrext64: boolean;
}

/** Why `bytes` that start with the `XFSB` magic are not a superblock of consistent geometry; undefined without the magic, or when they are. */
export function xfsSuperblockDamage(bytes: Uint8Array): string | undefined {
  if (bytes.length < 4 || new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0) !== XFS_MAGIC) return undefined;
  try {
    readGeometry(bytes);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message.replace(/^xfs: /, '') : String(error);
  }
}

/** True when `bytes` (at least {@link SUPERBLOCK_BYTES}) hold an XFS superblock of consistent geometry. */
export function looksLikeXfs(bytes: Uint8Array): boolean {
  try {
    readGeometry(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses and checks the superblock in `bytes` (the first sector or more). Throws
 * `E_FS_CORRUPT` for inconsistent geometry or a CRC mismatch, `E_FS_UNSUPPORTED` for v4
 * filesystems, realtime devices and unknown incompatible features.
 */
export function parseSuperblock(bytes: Uint8Array): XfsSuperblock {
  const g = readGeometry(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (g.version !== 5) throw fsUnsupported('xfs', `version ${g.version} filesystems (before CRCs) are not supported`);
  if (bytes.length < g.sectorSize || !xfsCrcMatches(bytes.subarray(0, g.sectorSize), 224)) throw fsCorrupt('xfs', 'superblock checksum mismatch');
  const incompat = view.getUint32(216);
  if ((incompat & ~INCOMPAT_KNOWN) !== 0) throw fsUnsupported('xfs', `unknown incompatible features 0x${(incompat & ~INCOMPAT_KNOWN).toString(16)}`);
  if (view.getBigUint64(16) !== 0n) throw fsUnsupported('xfs', 'realtime devices are not supported');
  const dirblklog = view.getUint8(192);
  if (g.blockLog + dirblklog > 16) throw fsCorrupt('xfs', `directory block size 2^${g.blockLog + dirblklog} is too large`);
  const hex = Buffer.from(bytes.subarray(32, 48)).toString('hex');
  const labelBytes = bytes.subarray(108, 120);
  const nul = labelBytes.indexOf(0);
  return {
    ...g,
    uuid: hex.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5'),
    label: Buffer.from(nul < 0 ? labelBytes : labelBytes.subarray(0, nul)).toString('utf8'),
    rootIno: view.getBigUint64(56),
    dirBlockSize: g.blockSize << dirblklog,
    hasFtype: (incompat & INCOMPAT_FTYPE) !== 0,
    asciiCi: (view.getUint16(100) & VERSION_BORGBIT) !== 0,
    hasNrext64: (incompat & INCOMPAT_NREXT64) !== 0,
  };
}

function readGeometry(bytes: Uint8Array) {
  if (bytes.length < SUPERBLOCK_BYTES) throw fsCorrupt('xfs', 'superblock truncated');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (what: string): never => {
    throw fsCorrupt('xfs', `superblock: ${what}`);
  };
  if (view.getUint32(0) !== XFS_MAGIC) bad('bad magic');
  const blockSize = view.getUint32(4);
  const blockLog = view.getUint8(120);
  if (blockLog < 9 || blockLog > 16 || blockSize !== 2 ** blockLog) bad(`block size ${blockSize} (log ${blockLog})`);
  const sectorSize = view.getUint16(102);
  const sectLog = view.getUint8(121);
  if (sectLog < 9 || sectLog > 15 || sectorSize !== 2 ** sectLog || sectorSize > blockSize) bad(`sector size ${sectorSize}`);
  const inodeSize = view.getUint16(104);
  const inodeLog = view.getUint8(122);
  if (inodeLog < 8 || inodeLog > 11 || inodeSize !== 2 ** inodeLog || inodeSize > blockSize) bad(`inode size ${inodeSize}`);
  const inopblog = view.getUint8(123);
  if (view.getUint16(106) !== blockSize / inodeSize || inopblog !== blockLog - inodeLog) bad('inodes per block');
  const agBlocks = view.getUint32(84);
  const agCount = view.getUint32(88);
  const agBlockLog = view.getUint8(124);
  if (agBlocks < 1 || agCount < 1 || agBlockLog > 31 || 2 ** agBlockLog < agBlocks || (agBlockLog > 0 && 2 ** (agBlockLog - 1) >= agBlocks)) bad(`allocation group of ${agBlocks} blocks (log ${agBlockLog})`);
  const dblocks = view.getBigUint64(8);
  if (dblocks > BigInt(agCount) * BigInt(agBlocks) || dblocks <= BigInt(agCount - 1) * BigInt(agBlocks)) bad(`${dblocks} blocks in ${agCount} groups of ${agBlocks}`);
  const dataBlocks = Number(dblocks);
  if (!Number.isSafeInteger(dataBlocks * blockSize)) bad('filesystem size beyond 2^53 bytes');
  const version = view.getUint16(100) & 0xf;
  if (version !== 4 && version !== 5) bad(`version ${version}`);
  return { blockSize, blockLog, dataBlocks, agBlocks, agCount, agBlockLog, inodeSize, inodeLog, inodesPerBlockLog: inopblog, sectorSize, version };
}
