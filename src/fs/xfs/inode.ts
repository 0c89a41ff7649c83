import type { FsNodeType } from '../filesystem.js';
import { fsCorrupt, fsUnsupported } from '../fs-errors.js';
import { xfsCrcMatches } from './crc32c.js';
import type { XfsSuperblock } from './superblock.js';

/**
 * An XFS v3 inode (struct xfs_dinode), `inodesize` bytes, big-endian except the CRC.
 *
 * | offset | size | field          | meaning                                                   |
 * |-------:|-----:|----------------|-----------------------------------------------------------|
 * |      0 |    2 | magic          | `IN` (0x494e)                                             |
 * |      2 |    2 | mode           | type (S_IFMT) and permission bits                         |
 * |      4 |    1 | version        | 3 on v5 filesystems                                       |
 * |      5 |    1 | format         | data fork: 0 device, 1 local, 2 extents, 3 btree          |
 * |      8 |    4 | uid            |                                                           |
 * |     12 |    4 | gid            |                                                           |
 * |     16 |    4 | nlink          |                                                           |
 * |     24 |    8 | big_nextents   | data fork extent count when flags2 has NREXT64            |
 * |     32 |    8 | atime          | legacy: s32 seconds + u32 ns; bigtime: u64 ns since -2^31 s|
 * |     40 |    8 | mtime          | same                                                      |
 * |     48 |    8 | ctime          | same                                                      |
 * |     56 |    8 | size           | bytes                                                     |
 * |     64 |    8 | nblocks        | blocks used, both forks and B+tree blocks                 |
 * |     76 |    4 | nextents       | data fork extent count (without NREXT64); with NREXT64:   |
 * |        |      |                | big_anextents, the attribute fork's extent count          |
 * |     80 |    2 | anextents      | attribute fork extent count (without NREXT64)             |
 * |     82 |    1 | forkoff        | attribute fork offset in the literal area / 8 (0: none)   |
 * |     83 |    1 | aformat        | attribute fork format: 1 local, 2 extents, 3 btree        |
 * |     90 |    2 | flags          | 0x1 realtime file, …                                      |
 * |    100 |    4 | crc            | CRC-32C of the whole inode (little-endian)                |
 * |    120 |    8 | flags2         | 0x8 BIGTIME timestamps, 0x10 NREXT64 counters             |
 * |    144 |    8 | crtime         | creation time, encoded like mtime                         |
 * |    152 |    8 | ino            | the inode's own number                                    |
 * |    176 |    … | literal area   | data fork (forkoff*8 bytes, or all), then attribute fork  |
 *
 * Device inodes hold their device number (u32: major << 18 | minor) at the start of the
 * data fork. The attribute fork (attr-fork.ts) runs from `176 + forkoff * 8` to the end of
 * the inode; it is only recorded here, and checked when attributes are read, so that a
 * damaged attribute fork leaves the content readable.
 */
const INODE_MAGIC = 0x494e;
const LITERAL_OFFSET = 176;
const FLAG_REALTIME = 0x1;
const FLAG2_BIGTIME = 0x8n;
const FLAG2_NREXT64 = 0x10n;

/** Data fork formats. */
export const enum ForkFormat {
  Device = 0,
  Local = 1,
  Extents = 2,
  Btree = 3,
}

/** An inode's core, decoded and checked. */
export interface XfsInode {
  ino: bigint;
  type: FsNodeType;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;
  format: ForkFormat;
  /** Data fork extent count the inode claims. */
  nextents: number;
  /** The data fork's bytes (a view into the inode). */
  dataFork: Uint8Array;
  /** The attribute fork as the inode claims it (unchecked), undefined when forkoff is 0. */
  attrFork?: AttrForkHeader;
  rdev?: { major: number; minor: number };
}

/** Where an inode's attribute fork lies and what shape it claims; checked by its reader. */
export interface AttrForkHeader {
  /** di_aformat, any byte (a valid one is Local, Extents or Btree). */
  format: number;
  /** Extent count the inode claims for the attribute fork. */
  nextents: number;
  /** The fork's bytes (a view into the inode, possibly empty). */
  bytes: Uint8Array;
}

const TYPES: Record<number, FsNodeType> = {
  0o010000: 'fifo', 0o020000: 'char-device', 0o040000: 'directory', 0o060000: 'block-device',
  0o100000: 'file', 0o120000: 'symlink', 0o140000: 'socket',
};

/** Decodes inode `ino` from its bytes; `E_FS_CORRUPT` on a bad magic, CRC, number or fork. */
export function parseInode(bytes: Uint8Array, ino: bigint, sb: XfsSuperblock): XfsInode {
  const bad = (what: string): never => {
    throw fsCorrupt('xfs', `inode ${ino}: ${what}`);
  };
  if (bytes.length !== sb.inodeSize || bytes.length < LITERAL_OFFSET) bad('truncated');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== INODE_MAGIC) bad('bad magic');
  if (view.getUint8(4) !== 3) bad(`version ${view.getUint8(4)} on a v5 filesystem`);
  if (!xfsCrcMatches(bytes, 100)) bad('checksum mismatch');
  if (view.getBigUint64(152) !== ino) bad(`claims to be inode ${view.getBigUint64(152)}`);
  const modeBits = view.getUint16(2);
  const type = TYPES[modeBits & 0o170000];
  if (type === undefined) bad(`unknown file type 0o${(modeBits & 0o170000).toString(8)}`);
  if (view.getUint16(90) & FLAG_REALTIME) throw fsUnsupported('xfs', `inode ${ino}: realtime files are not supported`);
  const flags2 = view.getBigUint64(120);
  const bigtime = (flags2 & FLAG2_BIGTIME) !== 0n;
  const nrext64 = (flags2 & FLAG2_NREXT64) !== 0n && sb.hasNrext64;
  const nextents = nrext64 ? Number(view.getBigUint64(24)) : view.getUint32(76);
  const size = view.getBigUint64(56);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) bad(`size ${size} beyond 2^53`);
  const forkoff = view.getUint8(82);
  const literal = sb.inodeSize - LITERAL_OFFSET;
  const dataForkBytes = forkoff === 0 ? literal : forkoff * 8;
  if (dataForkBytes > literal) bad(`attribute fork offset ${forkoff} beyond the inode`);
  const format = view.getUint8(5) as ForkFormat;
  const expected = type === 'char-device' || type === 'block-device' || type === 'fifo' || type === 'socket'
    ? [ForkFormat.Device]
    : type === 'file' ? [ForkFormat.Extents, ForkFormat.Btree, ForkFormat.Local] : [ForkFormat.Local, ForkFormat.Extents, ForkFormat.Btree];
  if (!expected.includes(format)) bad(`data fork format ${format} for a ${type}`);
  const dataFork = bytes.subarray(LITERAL_OFFSET, LITERAL_OFFSET + dataForkBytes);
  const time = (at: number): number => decodeTime(view, at, bigtime);
  const inode: XfsInode = {
    ino,
    type: type as FsNodeType,
    mode: modeBits & 0o7777,
    uid: view.getUint32(8),
    gid: view.getUint32(12),
    nlink: view.getUint32(16),
    size: Number(size),
    atimeMs: time(32),
    mtimeMs: time(40),
    ctimeMs: time(48),
    birthtimeMs: time(144),
    format,
    nextents,
    dataFork,
  };
  if (forkoff !== 0) {
    inode.attrFork = {
      format: view.getUint8(83),
      nextents: nrext64 ? view.getUint32(76) : view.getUint16(80),
      bytes: bytes.subarray(LITERAL_OFFSET + dataForkBytes),
    };
  }
  if (format === ForkFormat.Device && (type === 'char-device' || type === 'block-device')) {
    const dev = new DataView(dataFork.buffer, dataFork.byteOffset, dataFork.byteLength).getUint32(0);
    inode.rdev = { major: (dev >>> 18) & 0x3fff, minor: dev & 0x3ffff };
  }
  return inode;
}

/**
 * A timestamp in milliseconds. Legacy: s32 seconds and u32 nanoseconds since 1970. Bigtime:
 * one u64 of nanoseconds since 1901-12-13T20:45:52Z (-2^31 seconds).
 */
function decodeTime(view: DataView, at: number, bigtime: boolean): number {
  if (bigtime) {
    const ns = view.getBigUint64(at);
    return Number(ns / 1_000_000n) - 2 ** 31 * 1000 + Number(ns % 1_000_000n) / 1e6;
  }
  return view.getInt32(at) * 1000 + view.getUint32(at + 4) / 1e6;
}
