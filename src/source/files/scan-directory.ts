import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { decodeName, hostPath } from '../../names/index.js';
import { syscalls } from '../../native/index.js';
import { fileTypeOf, type FileMetadata } from './file-metadata.js';

/** One name of a scanned directory: its metadata (extended attributes not read), or why it has none. */
export interface ScannedEntry {
  name: string;
  /** Absent when `error` says why (ENOENT: it vanished between the listing and its lstat). */
  metadata?: FileMetadata;
  error?: NodeJS.ErrnoException;
}

/** Numbers per entry in the addon's `stats` (native/scan-directory.c lists them). */
const FIELDS = 19;

/** Where an entry's access time starts in its numbers (seconds, then nanoseconds). */
const ATIME_SECONDS = 13;

/**
 * Lists a directory and reads every entry's metadata as `readFileMetadataSync(path, { xattrs:
 * false })` would, in one call on a libuv pool thread (the listing and the lstat calls, and
 * none of the objects Node's lstat makes per entry). A symlink's target is read here, on the
 * calling thread. A name's bytes that are not UTF-8 are decoded by names/byte-names.ts
 * (`caf\xe9` as `caf\udce9`: its bytes are encodeName's; give host calls hostPath(path)).
 * Names that `isSafeName` refuses are passed to `refuse` and left out. Rejects (with the errno
 * name in `code`) when the directory itself cannot be read.
 */
export async function scanDirectory(path: string, isSafeName: (name: string) => boolean, refuse: (name: string, why: string) => void): Promise<ScannedEntry[]> {
  return (await listDirectory(path)).entries(isSafeName, refuse);
}

/** A directory listed with every entry's lstat ({@link DirectoryScan}); rejects as {@link scanDirectory}. */
export async function listDirectory(path: string): Promise<DirectoryScan> {
  const { names, stats } = await syscalls.scanDirectory(hostPath(path));
  return new DirectoryScan(path, names, stats);
}

/**
 * One directory's listing as the addon returned it (names' bytes, 19 numbers an entry), turned
 * into entries only when asked: an incremental whose listing of a directory is the one its
 * parent snapshot recorded (the same {@link digest}) needs none of them.
 */
export class DirectoryScan {
  constructor(
    readonly path: string,
    private readonly names: Buffer,
    private readonly stats: Float64Array,
  ) {}

  /**
   * SHA-256 (its first 128 bits, 32 hex) of `seed`, every name's bytes and every entry's
   * lstat record as listed (type, mode, owner ids, links, size, blocks, device, inode,
   * device numbers, mtime and ctime to the nanosecond, and the errno of an entry that could
   * not be stat'ed), the access time as 0. Two listings with the same digest name the same
   * entries with the same metadata but for access times; the seed carries what else decides
   * how they are recorded (file-backup's options). Access times are left out because reading
   * moves them (a readlink, a listing by anyone, relatime's daily update) without a change to
   * record: every other change, `touch -a` included, moves the ctime.
   */
  digest(seed: Uint8Array): string {
    const records = new Float64Array(this.stats);
    for (let at = 0; at < records.length; at += FIELDS) {
      records[at + ATIME_SECONDS] = 0;
      records[at + ATIME_SECONDS + 1] = 0;
    }
    return createHash('sha256').update(seed).update(this.names).update(new Uint8Array(records.buffer)).digest('hex').slice(0, 32);
  }

  /** Entries listed (names refused by {@link entries} included). */
  get count(): number {
    return this.stats.length / FIELDS;
  }

  /** Memory the listing holds: its names' bytes and its numbers. */
  get bytes(): number {
    return this.names.length + this.stats.byteLength;
  }

  /** Whether some entry is a directory. */
  get hasSubdirectories(): boolean {
    return this.some((at) => ((this.stats[at + 1] as number) & 0o170000) === 0o040000);
  }

  /** Whether some entry other than a directory has more than one name (a hard link), or could not be stat'ed. */
  get hasLinksOrErrors(): boolean {
    return this.some((at) => (this.stats[at] as number) !== 0 || ((this.stats[at + 4] as number) > 1 && ((this.stats[at + 1] as number) & 0o170000) !== 0o040000));
  }

  private some(test: (at: number) => boolean): boolean {
    for (let at = 0; at < this.stats.length; at += FIELDS) if (test(at)) return true;
    return false;
  }

  /**
   * The entries with their metadata (names decoded by decodeName); names `isSafeName` refuses
   * go to `refuse` instead. `onlyDirectories`: the subdirectories alone (no object made for any other entry).
   */
  entries(isSafeName: (name: string) => boolean, refuse: (name: string, why: string) => void, onlyDirectories = false): ScannedEntry[] {
    const { names, stats, path } = this;
    const decoded = names.toString('utf8');
    const checkBytes = decoded.includes('\uFFFD'); // a byte that is not UTF-8 decodes to U+FFFD: decode such names again, losslessly
    const prefix = path === '/' ? '' : path;
    const out: ScannedEntry[] = [];
    let start = 0;
    let byteStart = 0;
    for (let i = 0; start < decoded.length; i++) {
      const end = decoded.indexOf('\u0000', start);
      const at = i * FIELDS;
      if (onlyDirectories && ((stats[at] as number) !== 0 || ((stats[at + 1] as number) & 0o170000) !== 0o040000)) {
        start = end + 1;
        if (checkBytes) byteStart = names.indexOf(0, byteStart) + 1;
        continue;
      }
      let name = decoded.slice(start, end);
      start = end + 1;
      if (checkBytes) {
        const byteEnd = names.indexOf(0, byteStart);
        const bytes = names.subarray(byteStart, byteEnd);
        byteStart = byteEnd + 1;
        if (name.includes('\uFFFD')) name = decodeName(bytes);
      }
      if (!isSafeName(name)) {
        refuse(name, 'name cannot be stored: not backed up');
        continue;
      }
      const errno = stats[at] as number;
      if (errno !== 0) {
        out.push({ name, error: errnoError(errno, `${prefix}/${name}`) });
        continue;
      }
      try {
        out.push({ name, metadata: metadataOf(stats, at, `${prefix}/${name}`) });
      } catch (error) {
        out.push({ name, error: error as NodeJS.ErrnoException });
      }
    }
    return out;
  }
}

function metadataOf(stats: Float64Array, at: number, path: string): FileMetadata {
  const field = (k: number) => stats[at + k] as number;
  const mode = field(1);
  const type = fileTypeOf(mode & 0o170000);
  const metadata: FileMetadata = {
    type,
    mode: mode & 0o7777,
    uid: field(2),
    gid: field(3),
    mtime: nanoseconds(field(15), field(16)),
    atime: nanoseconds(field(13), field(14)),
    ctime: nanoseconds(field(17), field(18)),
    dev: wide(field(7), field(8)),
    inode: wide(field(9), field(10)),
    links: field(4),
    size: type === 'file' ? field(5) : 0,
    allocated: field(6) * 512,
    xattrs: [],
  };
  if (type === 'char-device' || type === 'block-device') {
    // Linux's dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31 (gnu_dev_major).
    const high = field(11);
    const low = field(12);
    metadata.rdev = { major: ((low >>> 8) & 0xfff) | (high & ~0xfff), minor: ((low & 0xff) | ((low >>> 12) & ~0xff)) >>> 0 };
  }
  if (type === 'symlink') metadata.target = decodeName(readlinkSync(hostPath(path), { encoding: 'buffer' })); // a target is bytes, as names are
  return metadata;
}

/** A timespec as nanoseconds since 1970 in decimal, without BigInts but for times before 1970. */
function nanoseconds(seconds: number, nanos: number): string {
  if (seconds > 0) return `${seconds}${nanos < 100_000_000 ? String(nanos).padStart(9, '0') : nanos}`;
  if (seconds === 0) return String(nanos);
  return (BigInt(seconds) * 1_000_000_000n + BigInt(nanos)).toString();
}

function wide(high: number, low: number): bigint {
  return high === 0 ? BigInt(low) : (BigInt(high) << 32n) | BigInt(low);
}

/** An error as Node's fs calls make them: the errno name in `code`, libuv's text for it in the message. */
function errnoError(errno: number, path: string): NodeJS.ErrnoException {
  const known = getSystemErrorMap().get(-errno);
  const code = known?.[0] ?? Object.entries(constants.errno).find(([, value]) => value === errno)?.[0] ?? 'EIO';
  return Object.assign(new Error(`${code}: ${known?.[1] ?? `errno ${errno}`}, lstat '${path}'`), { code, errno: -errno, syscall: 'lstat', path });
}
