import { aclXattrToText } from './acl-text.js';

/**
 * The header of one tar entry as `files get --tar` writes it: POSIX.1-2001 "pax" format, a
 * ustar header block preceded, when a field does not fit it, by an extended header (typeflag
 * `x`) whose records override that field. Names and link targets are bytes: a guest's
 * ext4/XFS name need not be UTF-8 (names/byte-names.ts), and tar keeps bytes as they are.
 *
 * ustar header block (512 bytes; numbers are zero-padded octal ending in NUL):
 *
 *   offset  size  field
 *        0   100  name      path, or its last part when `prefix` holds the rest
 *      100     8  mode      permission bits (setuid, setgid, sticky included)
 *      108     8  uid
 *      116     8  gid
 *      124    12  size      content bytes (0 for folders and links); base-256 past 11 digits
 *      136    12  mtime     seconds since 1970
 *      148     8  chksum    sum of the block's bytes, this field counted as 8 spaces
 *      156     1  typeflag  '0' file, '1' hard link, '2' symlink, '5' folder, 'x' pax records
 *      157   100  linkname  target of a symlink, first name of a hard link
 *      257     6  magic     "ustar\0"
 *      263     2  version   "00"
 *      265    32  uname     the owner's name, NUL-terminated (empty: none recorded)
 *      297    32  gname     the group's name
 *      329    16  devmajor, devminor
 *      345   155  prefix    path before the last `/` that makes `name` fit
 *      500    12  (zeros)
 *
 * Owners, as GNU tar writes them: the ids in `uid`/`gid`, and the names where the source
 * records them (a file snapshot; a guest filesystem holds ids only) in `uname`/`gname`.
 * `tar -x` as root then gives a name its id on the extracting host and falls back to the
 * id, as Coffer's restores do (restore/host-owners.ts); `tar --numeric-owner -x` takes the ids.
 *
 * Extended header records: `"<length> <keyword>=<value>\n"`, length counting the whole
 * record, its own digits included. Written: `path` and `linkpath` when the bytes do not fit
 * the ustar fields or are not ASCII; `uname` and `gname` when the name is longer than 31
 * bytes or not ASCII; `uid`, `gid` and `size` when the ustar field cannot
 * hold them, `mtime` (decimal seconds, may be negative or fractional) for a time before 1970
 * or after 2038-01-19. The ustar field then
 * holds what fits (the path cut to 100 bytes, ids 0, the time clamped), never a value a
 * reader would take for the truth. Record values are UTF-8 by default; a path or link target
 * that is not (a raw byte E9 of a Latin-1 name) comes with `hdrcharset=BINARY`, which says the
 * values are bytes to be used as they are (POSIX pax, "hdrcharset"). GNU tar 1.34 and
 * Python's tarfile extract such names byte for byte (tar-tree.test.ts).
 *
 * Extended attributes, as GNU tar 1.34 writes and reads them (`--xattrs`, `--acls`): each
 * one a record `SCHILY.xattr.<name>=<value bytes>` (in the name, `%` and `=` written `%25`
 * and `%3D`); a POSIX ACL (`system.posix_acl_access`/`_default`, Linux xattr form) also as
 * text in `SCHILY.acl.access`/`SCHILY.acl.default` (acl-text.ts), which is what `tar --acls -x`
 * restores, while `tar --xattrs --xattrs-include='*' -x` sets the xattr form.
 */
export const TAR_BLOCK = 512;

/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(2 * TAR_BLOCK);

const FIELD = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;

const TYPEFLAG = { file: '0', link: '1', symlink: '2', directory: '5', pax: 'x' } as const;

/**
 * The latest time written in the ustar field, 2038-01-19: the field holds more, but readers
 * that keep it in a signed 32-bit number wrap later ones; later times go in an `mtime` record
 * with their fraction of a second.
 */
const USTAR_LATEST = 2 ** 31 - 1;

/** Largest value a numeric field of `size` bytes holds in octal (size - 1 digits). */
const octalMax = (size: number): number => 8 ** (size - 1) - 1;

/** What one entry's header says. */
export interface TarEntry {
  /** Relative path as bytes; a folder's ends in `/`. */
  path: Uint8Array;
  type: 'file' | 'directory' | 'symlink' | 'link';
  /** A symlink's target, or the path of a hard link's first name, as bytes. */
  linkPath?: Uint8Array;
  /** Permission bits (& 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** The owner's and group's names (none: the reader takes the ids). */
  user?: string | undefined;
  group?: string | undefined;
  /** Modification time; not finite (not recorded) is written as 1970. */
  mtimeMs: number;
  /** Content bytes that follow (files only). */
  size: number;
  /** Extended attributes, names and values as bytes. */
  xattrs?: readonly { name: Uint8Array; value: Uint8Array }[];
}

/** GNU tar's text records for the ACL attributes. */
const ACL_RECORDS: ReadonlyMap<string, string> = new Map([
  ['system.posix_acl_access', 'SCHILY.acl.access'],
  ['system.posix_acl_default', 'SCHILY.acl.default'],
]);

/**
 * The bytes that start an entry: the extended header and its records when needed, then the
 * ustar block. Content follows, padded by {@link tarPadding}. Throws `RangeError` for a size
 * that is not a whole number of bytes (a bug in the caller: readers give sizes ≥ 0).
 */
export function tarHeader(entry: TarEntry): Buffer {
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new RangeError(`tar entry size ${entry.size}`);
  const records: PaxRecord[] = [];
  const path = Buffer.from(entry.path);
  const link = entry.linkPath !== undefined ? Buffer.from(entry.linkPath) : undefined;
  const split = ustarPath(path);
  if (split === undefined || !isAscii(path)) records.push(['path', path]);
  if (link !== undefined && (link.length > FIELD.linkname[1] || !isAscii(link))) records.push(['linkpath', link]);
  if (!isUtf8(path) || (link !== undefined && !isUtf8(link))) records.unshift(['hdrcharset', 'BINARY']);
  const uid = fitOrRecord(entry.uid, FIELD.uid[1], 'uid', records);
  const gid = fitOrRecord(entry.gid, FIELD.gid[1], 'gid', records);
  const uname = nameOrRecord(entry.user, FIELD.uname[1], 'uname', records);
  const gname = nameOrRecord(entry.group, FIELD.gname[1], 'gname', records);
  if (entry.size > octalMax(FIELD.size[1])) records.push(['size', String(entry.size)]);
  const ms = Number.isFinite(entry.mtimeMs) ? entry.mtimeMs : 0;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 0 || seconds > USTAR_LATEST) records.push(['mtime', paxSeconds(ms)]);
  const mtime = Math.min(Math.max(seconds, 0), USTAR_LATEST);
  for (const { name, value } of entry.xattrs ?? []) {
    const acl = ACL_RECORDS.get(Buffer.from(name).toString('latin1'));
    const text = acl !== undefined ? aclXattrToText(value) : undefined;
    if (acl !== undefined && text !== undefined) records.push([acl, text]);
    records.push([Buffer.concat([Buffer.from('SCHILY.xattr.', 'latin1'), xattrKeyword(name)]), value]);
  }

  const block = ustarBlock({
    name: split?.name ?? path.subarray(0, FIELD.name[1]),
    prefix: split?.prefix,
    mode: entry.mode & 0o7777,
    uid,
    gid,
    uname,
    gname,
    size: entry.size,
    mtime,
    typeflag: TYPEFLAG[entry.type],
    linkname: link?.subarray(0, FIELD.linkname[1]),
  });
  if (records.length === 0) return block;
  const body = paxRecords(records);
  const paxBlock = ustarBlock({ name: Buffer.from('PaxHeader'), mode: 0o644, uid, gid, size: body.length, mtime, typeflag: TYPEFLAG.pax });
  return Buffer.concat([paxBlock, body, tarPadding(body.length), block]);
}

/** Zeros that fill content of `size` bytes up to a whole block. */
export function tarPadding(size: number): Buffer {
  const rest = size % TAR_BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : TAR_BLOCK - rest);
}

/**
 * `path` in the ustar fields: whole in `name` (≤ 100 bytes), or split at a `/` into `prefix`
 * (≤ 155 bytes) and `name` (1..100 bytes); `undefined` when neither fits.
 */
function ustarPath(path: Buffer): { name: Buffer; prefix?: Buffer } | undefined {
  if (path.length <= FIELD.name[1]) return { name: path };
  // The slash (not the one ending a folder's path) leaving at most 100 bytes after it.
  for (let slash = path.indexOf(0x2f); slash !== -1 && slash < path.length - 1; slash = path.indexOf(0x2f, slash + 1)) {
    if (slash > FIELD.prefix[1]) return undefined;
    if (path.length - slash - 1 <= FIELD.name[1]) return slash === 0 ? undefined : { name: path.subarray(slash + 1), prefix: path.subarray(0, slash) };
  }
  return undefined;
}

/** `value` when the octal field holds it, else 0 there and the exact value in a record. */
function fitOrRecord(value: number, size: number, key: string, records: PaxRecord[]): number {
  if (value >= 0 && value <= octalMax(size)) return value;
  records.push([key, String(value)]);
  return 0;
}

/** A name in its ustar field (NUL-terminated, ASCII), else the field empty and the name in a record; undefined: none. */
function nameOrRecord(name: string | undefined, size: number, key: string, records: PaxRecord[]): Buffer | undefined {
  if (name === undefined || name === '') return undefined;
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length < size && isAscii(bytes)) return bytes;
  records.push([key, bytes]);
  return undefined;
}

interface UstarFields {
  name: Uint8Array;
  prefix?: Uint8Array | undefined;
  mode: number;
  uid: number;
  gid: number;
  uname?: Uint8Array | undefined;
  gname?: Uint8Array | undefined;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: Uint8Array | undefined;
}

function ustarBlock(f: UstarFields): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  const put = (field: keyof typeof FIELD, bytes: Uint8Array): void => {
    const [at, size] = FIELD[field];
    if (bytes.length > size) throw new RangeError(`tar header field ${field} holds ${size} bytes, given ${bytes.length}`);
    block.set(bytes, at);
  };
  const octal = (field: keyof typeof FIELD, value: number): void => put(field, Buffer.from(`${value.toString(8).padStart(FIELD[field][1] - 1, '0')}\0`, 'latin1'));
  put('name', f.name);
  octal('mode', f.mode);
  octal('uid', f.uid);
  octal('gid', f.gid);
  if (f.size <= octalMax(FIELD.size[1])) octal('size', f.size);
  else put('size', base256(f.size, FIELD.size[1]));
  octal('mtime', f.mtime);
  put('typeflag', Buffer.from(f.typeflag, 'latin1'));
  if (f.linkname !== undefined) put('linkname', f.linkname);
  put('magic', Buffer.from('ustar\0', 'latin1'));
  put('version', Buffer.from('00', 'latin1'));
  if (f.uname !== undefined) put('uname', f.uname);
  if (f.gname !== undefined) put('gname', f.gname);
  if (f.prefix !== undefined) put('prefix', f.prefix);
  block.fill(0x20, FIELD.chksum[0], FIELD.chksum[0] + FIELD.chksum[1]);
  let sum = 0;
  for (const byte of block) sum += byte;
  put('chksum', Buffer.from(`${sum.toString(8).padStart(6, '0')}\0 `, 'latin1'));
  return block;
}

/** GNU's base-256 number: first byte 0x80, the value big-endian in the rest. */
function base256(value: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  out[0] = 0x80;
  let rest = value;
  for (let i = size - 1; i > 0; i--) {
    out[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return out;
}

/** One extended header record: its keyword (bytes for an attribute's name) and value. */
type PaxRecord = [string | Uint8Array, Uint8Array | string];

/** An attribute name in a `SCHILY.xattr.` keyword: `%` and `=` (which would end the keyword) escaped as GNU tar does. */
function xattrKeyword(name: Uint8Array): Buffer {
  const out: number[] = [];
  for (const byte of name) {
    if (byte === 0x25) out.push(0x25, 0x32, 0x35);
    else if (byte === 0x3d) out.push(0x25, 0x33, 0x44);
    else out.push(byte);
  }
  return Buffer.from(out);
}

/** Extended header records, each `"<length> <key>=<value>\n"`. */
function paxRecords(records: PaxRecord[]): Buffer {
  return Buffer.concat(
    records.map(([key, value]) => {
      const body = Buffer.concat([Buffer.from(' ', 'latin1'), typeof key === 'string' ? Buffer.from(key, 'latin1') : key, Buffer.from('=', 'latin1'), typeof value === 'string' ? Buffer.from(value, 'utf8') : value, Buffer.from('\n', 'latin1')]);
      let length = body.length + String(body.length).length;
      if (String(length).length > String(body.length).length) length = body.length + String(length).length;
      return Buffer.concat([Buffer.from(String(length), 'latin1'), body]);
    }),
  );
}

/** Milliseconds since 1970 as PAX's decimal seconds ("-1", "7258118400.25"). */
function paxSeconds(ms: number): string {
  const sign = ms < 0 ? '-' : '';
  const whole = Math.floor(Math.abs(ms) / 1000);
  const fraction = Math.abs(ms) % 1000;
  return fraction === 0 ? `${sign}${whole}` : `${sign}${whole}.${String(fraction).padStart(3, '0').replace(/0+$/, '')}`;
}

function isAscii(bytes: Buffer): boolean {
  return bytes.every((b) => b < 0x80);
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

function isUtf8(bytes: Buffer): boolean {
  try {
    STRICT_UTF8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
