import { lstatSync, readlinkSync } from 'node:fs';
import { decodeName, hostPath } from '../../names/index.js';
import { syscalls } from '../../native/index.js';

/** What a directory entry is (the names a file tree uses). */
export type FileType = 'file' | 'directory' | 'symlink' | 'fifo' | 'char-device' | 'block-device' | 'socket';

/** Everything Coffer records of one path, read without following a final symlink. */
export interface FileMetadata {
  type: FileType;
  /** Permission bits and setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since 1970, in decimal (as trees record them: compared without a conversion). */
  mtime: string;
  atime: string;
  ctime: string;
  dev: bigint;
  inode: bigint;
  links: number;
  size: number;
  /** Bytes allocated (st_blocks × 512): less than `size` hints at holes. */
  allocated: number;
  rdev?: { major: number; minor: number };
  /** A symlink's target. */
  target?: string;
  /** Extended attributes, POSIX ACLs included, sorted by name. */
  xattrs: { name: string; value: Buffer }[];
}

const TYPES: [number, FileType][] = [
  [0o100000, 'file'], [0o040000, 'directory'], [0o120000, 'symlink'], [0o010000, 'fifo'],
  [0o020000, 'char-device'], [0o060000, 'block-device'], [0o140000, 'socket'],
];

/** The type of an `st_mode & S_IFMT` (an unknown one is read as a file). */
export function fileTypeOf(format: number): FileType {
  return TYPES.find(([bits]) => bits === format)?.[1] ?? 'file';
}

/**
 * Reads a path's metadata with lstat(2) (nanosecond times, in decimal), its symlink target,
 * and its extended attributes (llistxattr/lgetxattr). Throws Node's errors (`ENOENT` when the
 * path vanished) for the caller to report. `path` as the walk holds it: bytes that are not
 * UTF-8 as names/byte-names.ts decodes them (the calls get hostPath's bytes), and so the target.
 *
 * The calls are synchronous, on the calling thread: a file backup makes one lstat per entry,
 * and through libuv's thread pool each cost a round trip (futex wake, eventfd, promise) that
 * took longer than the lstat itself on cached metadata (`strace -c -f`, 2026-11-26). The
 * xattr calls were synchronous already.
 */
export async function readFileMetadata(path: string, options: MetadataOptions = {}): Promise<FileMetadata> {
  return readFileMetadataSync(path, options);
}

/** What {@link readFileMetadata} may leave out. */
export interface MetadataOptions {
  /** False: leave `xattrs` empty, for a caller that knows them already (or reads them with {@link readXattrs}). */
  xattrs?: boolean;
}

/** {@link readFileMetadata}, as a plain call. */
export function readFileMetadataSync(path: string, options: MetadataOptions = {}): FileMetadata {
  const host = hostPath(path);
  const st = lstatSync(host, { bigint: true });
  const type = fileTypeOf(Number(st.mode & 0o170000n));
  const rdev = Number(st.rdev);
  const metadata: FileMetadata = {
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtime: st.mtimeNs.toString(),
    atime: st.atimeNs.toString(),
    ctime: st.ctimeNs.toString(),
    dev: st.dev,
    inode: st.ino,
    links: Number(st.nlink),
    size: type === 'file' ? Number(st.size) : 0,
    allocated: Number(st.blocks) * 512,
    xattrs: options.xattrs === false ? [] : readXattrs(path),
  };
  // Linux's dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31 (gnu_dev_major).
  if (type === 'char-device' || type === 'block-device') {
    metadata.rdev = { major: ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff), minor: (rdev & 0xff) | ((rdev >>> 12) & ~0xff) };
  }
  if (type === 'symlink') metadata.target = decodeName(readlinkSync(host, { encoding: 'buffer' }));
  return metadata;
}

/**
 * Extended attributes of a path, sorted by name; none where the filesystem has none. Names are
 * bytes, like file names: one that is not UTF-8 is kept as {@link decodeName} spells it, and
 * asked for by its bytes.
 */
export function readXattrs(path: string): { name: string; value: Buffer }[] {
  const out: { name: string; value: Buffer }[] = [];
  const host = hostPath(path);
  const names = syscalls.listXattrs(host).map((bytes) => ({ bytes, name: decodeName(bytes) })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const { bytes, name } of names) {
    const value = syscalls.getXattr(host, bytes);
    if (value !== null) out.push({ name, value });
  }
  return out;
}
