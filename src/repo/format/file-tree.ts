/**
 * A file tree object, version 1: one directory of a file snapshot (docs/repository-format.md
 * §16). Stored as a content-addressed object of kind 8 under `trees/<2 hex>/<64 hex>`, sealed
 * like every object (compressed, encrypted); a directory whose entries did not change is the
 * same object in every snapshot. The plaintext is UTF-8 JSON:
 *
 * ```json
 * {
 *   "version": 1,
 *   "entries": [                         // sorted by the bytes of `name`, names unique
 *     {
 *       "name": "passwd",                // 1..255 bytes; no "/", no NUL; not "." or ".."; a byte
 *                                        // that is not UTF-8 as "\udcNN" (0x80..0xFF: see below)
 *       "type": "file",                  // file | directory | symlink | fifo | char-device | block-device | socket
 *       "mode": 420,                     // permission bits and setuid/setgid/sticky, 0..0o7777
 *       "uid": 0, "gid": 0,
 *       "user": "root", "group": "root", // optional: the names the ids had where the backup ran
 *       "mtime": "1732590000123456789",  // nanoseconds since 1970 UTC, decimal strings (64-bit)
 *       "atime": "1732590000123456789",
 *       "ctime": "1732590000123456789",
 *       "inode": 1234, "links": 1,       // for the next backup's unchanged check, and the record
 *       "size": 3021,                    // bytes (0 but for files)
 *       "content": [["<64 hex>", 3021]], // file only: pieces in order, lengths summing to size:
 *                                        //   ["<64 hex>", n] a data chunk of n bytes,
 *                                        //   ["hole", n] a hole (restored as a hole),
 *                                        //   ["zero", n] n zero bytes that were data
 *       "hardlink": 3,                   // optional, file only: entries sharing the number are one
 *                                        // inode (names of it); any of them carries the content
 *       "target": "../lib/x",            // symlink only: the target as stored (bytes as `name`)
 *       "rdev": [8, 1],                  // char-device/block-device only: major, minor
 *       "xattrs": [["user.k", "<base64>"]], // optional, sorted by name: extended attributes,
 *                                        // POSIX ACLs included (system.posix_acl_access/default);
 *                                        // a name's bytes as `name` writes a file name's
 *       "tree": "<64 hex>",              // directory only: the tree object of its entries
 *       "scan": ["<32 hex>", 812, 90210] // optional, directory only: the listing the backup
 *                                        // that wrote `tree` made of the directory: its digest
 *                                        // (first 128 bits of SHA-256 over the backup's options,
 *                                        // every name and lstat record: DirectoryScan.digest),
 *                                        // the entries `tree` holds and their files' bytes. A
 *                                        // later backup listing the same digest keeps `tree`
 *                                        // (a directory without subdirectories: unread).
 *       "subtree": ["<32 hex>", 9120, 410000000] // optional, directory only, with "scan": the same
 *                                        // for everything below: a digest over the scan's
 *                                        // digest and every subdirectory's subtree digest
 *                                        // (source/files/subtree-digest.ts), the entries of
 *                                        // all trees below and their files' bytes. A later
 *                                        // backup whose listings below give the same digest
 *                                        // keeps `tree` and reads no tree below it.
 *     }
 *   ]
 * }
 * ```
 * A tree's plaintext is at most 64 MiB (the envelope's limit): about 150,000 entries.
 *
 * Names are bytes on Linux. A name (or target) that is not valid UTF-8 is held as
 * names/byte-names.ts decodes it: each byte that is not part of valid UTF-8 is the lone
 * surrogate U+DC80 + byte, which JSON.stringify writes as the escape `\udcNN` (the JSON stays
 * valid UTF-8) and JSON.parse reads back; the bytes are `encodeName(name)`, and sorting, the
 * 255-byte limit and uniqueness are by them. Since 2026-11-29; a reader before that rejects a
 * tree holding such a name as damaged (`unsafe name`), never restores it under other bytes.
 */
import { CofferError } from '../../errors/index.js';
import { encodeName, hasRawBytes, isDecodedName } from '../../names/index.js';

export const FILE_TREE_VERSION = 1;

/** The kinds of entries a tree holds (the names FsNode uses). */
export const TREE_ENTRY_TYPES = ['file', 'directory', 'symlink', 'fifo', 'char-device', 'block-device', 'socket'] as const;
export type TreeEntryType = (typeof TREE_ENTRY_TYPES)[number];

/** One piece of a file's content: a chunk id (64 hex), or `hole`/`zero`, and its length. */
export type ContentPiece = [string, number];

/** One entry of a directory. */
export interface TreeEntry {
  name: string;
  type: TreeEntryType;
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  mtime: string;
  atime: string;
  ctime: string;
  inode: number;
  links: number;
  size: number;
  content?: ContentPiece[];
  hardlink?: number;
  target?: string;
  rdev?: [number, number];
  xattrs?: [string, string][];
  tree?: string;
  /** Directory only: digest of its listing, entries and file bytes of `tree` (see the format above). */
  scan?: [string, number, number];
  /** Directory only, with `scan`: digest of every listing below, entries and file bytes of every tree below (see the format above). */
  subtree?: [string, number, number];
}

/** A decoded tree. */
export interface FileTree {
  version: 1;
  entries: TreeEntry[];
}

const HEX_ID = /^[0-9a-f]{64}$/;
const SCAN_DIGEST = /^[0-9a-f]{32}$/;
const NS = /^-?\d{1,20}$/;
/** Piece lengths: a chunk is at most 64 MiB; holes and zero runs up to 2^53. */
const MAX_CHUNK_PIECE = 64 * 1024 * 1024;

/**
 * Whether a name is safe to create below a directory: no `/`, no NUL, not `.`/`..`, 1..255
 * bytes, and bytes it stands for (a lone surrogate only as a raw byte that decodeName gives).
 */
/** An entry's extended attributes with their values decoded from base64, in the tree's order (as setxattr takes them). */
export function entryXattrs(entry: TreeEntry): { name: string; value: Buffer }[] {
  return (entry.xattrs ?? []).map(([name, value]) => ({ name, value: Buffer.from(value, 'base64') }));
}

export function isSafeEntryName(name: string): boolean {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\u0000')) return false;
  // Well formed (no lone surrogate) is UTF-8 as it is; checked without a copy (a backup asks
  // this of every name it lists, a restore of every entry it reads).
  if (!LONE_SURROGATE.test(name)) return name.length <= 85 || Buffer.byteLength(name, 'utf8') <= 255;
  return isDecodedName(name) && encodeName(name).length <= 255;
}

/** The number of bytes a name or target stands for. */
function byteLength(text: string): number {
  return hasRawBytes(text) ? encodeName(text).length : Buffer.byteLength(text, 'utf8');
}

/** A UTF-16 surrogate not in a pair (in `u` mode a pair is one code point, never `Cs`). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Orders names by their bytes (how a tree's entries are sorted; a raw byte as itself). UTF-8
 * keeps the order of code points, and below U+D800 a UTF-16 unit is its code point: names
 * that first differ there (nearly all) are compared without encoding them; past it, by their bytes.
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x < 0xd800 && y < 0xd800) return x < y ? -1 : 1;
    return Buffer.compare(encodeName(a), encodeName(b));
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Serializes a tree; the entries must already be sorted and valid. */
export function encodeFileTree(entries: readonly TreeEntry[]): Buffer {
  return Buffer.from(JSON.stringify({ version: FILE_TREE_VERSION, entries }), 'utf8');
}

/** Parses and validates a tree; `E_CORRUPT_OBJECT` for anything malformed or hostile. */
export function decodeFileTree(bytes: Buffer, name: string): FileTree {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `file tree ${name} is corrupt: ${why}`, { subject: { object: name } });
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw corrupt('not JSON');
  }
  const tree = value as Partial<FileTree>;
  if (typeof tree !== 'object' || tree === null || tree.version !== FILE_TREE_VERSION) throw corrupt('unknown version');
  if (!Array.isArray(tree.entries)) throw corrupt('no entries');
  let previous: string | undefined;
  for (const entry of tree.entries) {
    validateEntry(entry, corrupt);
    if (previous !== undefined && compareNames(previous, entry.name) >= 0) throw corrupt(`entries not sorted or not unique at ${JSON.stringify(entry.name)}`);
    previous = entry.name;
  }
  return tree as FileTree;
}

function validateEntry(e: TreeEntry, corrupt: (why: string) => CofferError): void {
  if (typeof e !== 'object' || e === null || typeof e.name !== 'string' || !isSafeEntryName(e.name)) throw corrupt(`unsafe name ${JSON.stringify((e as { name?: unknown })?.name)}`);
  const bad = (what: string) => corrupt(`${JSON.stringify(e.name)}: bad ${what}`);
  if (!(TREE_ENTRY_TYPES as readonly string[]).includes(e.type)) throw bad('type');
  if (!Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o7777) throw bad('mode');
  for (const id of [e.uid, e.gid]) if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw bad('owner');
  if ((e.user !== undefined && typeof e.user !== 'string') || (e.group !== undefined && typeof e.group !== 'string')) throw bad('owner name');
  for (const t of [e.mtime, e.atime, e.ctime]) if (typeof t !== 'string' || !NS.test(t)) throw bad('time');
  if (!Number.isSafeInteger(e.inode) || e.inode < 0 || !Number.isSafeInteger(e.links) || e.links < 0) throw bad('inode');
  if (!Number.isSafeInteger(e.size) || e.size < 0) throw bad('size');
  if (e.type === 'file') {
    if (!Array.isArray(e.content)) throw bad('content');
    let total = 0;
    for (const piece of e.content) {
      if (!Array.isArray(piece) || piece.length !== 2 || typeof piece[0] !== 'string' || !Number.isSafeInteger(piece[1]) || piece[1] <= 0) throw bad('content piece');
      const [what, length] = piece;
      if (what !== 'hole' && what !== 'zero' && !(HEX_ID.test(what) && length <= MAX_CHUNK_PIECE)) throw bad('content piece');
      total += length;
    }
    if (total !== e.size) throw bad('content length');
    if (e.hardlink !== undefined && (!Number.isSafeInteger(e.hardlink) || e.hardlink < 1)) throw bad('hard link');
  } else if (e.content !== undefined || e.hardlink !== undefined) throw bad('content');
  if ((e.type === 'symlink') !== (typeof e.target === 'string')) throw bad('target');
  if (e.target !== undefined && (e.target.length === 0 || e.target.includes('\u0000') || !isDecodedName(e.target) || byteLength(e.target) > 4095)) throw bad('target');
  const device = e.type === 'char-device' || e.type === 'block-device';
  if (device !== (e.rdev !== undefined)) throw bad('device numbers');
  if (e.rdev !== undefined && (!Array.isArray(e.rdev) || e.rdev.length !== 2 || !e.rdev.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff))) throw bad('device numbers');
  if ((e.type === 'directory') !== (typeof e.tree === 'string' && HEX_ID.test(e.tree))) throw bad('subtree');
  if (e.scan !== undefined && (e.type !== 'directory' || !isListingSummary(e.scan))) throw bad('scan');
  if (e.subtree !== undefined && (e.scan === undefined || !isListingSummary(e.subtree))) throw bad('subtree digest');
  if (e.xattrs !== undefined) {
    if (!Array.isArray(e.xattrs)) throw bad('xattrs');
    for (const x of e.xattrs) {
      if (!Array.isArray(x) || x.length !== 2 || typeof x[0] !== 'string' || x[0].length === 0 || !isDecodedName(x[0]) || encodeName(x[0]).length > 255 || x[0].includes('\u0000') || typeof x[1] !== 'string') throw bad('xattrs');
    }
  }
}

/** A `scan` or `subtree` member: [32 hex, entries, bytes]. */
function isListingSummary(value: unknown): boolean {
  if (!Array.isArray(value) || value.length !== 3) return false;
  const [digest, entries, bytes] = value as unknown[];
  return typeof digest === 'string' && SCAN_DIGEST.test(digest) && Number.isSafeInteger(entries) && (entries as number) >= 0 && Number.isSafeInteger(bytes) && (bytes as number) >= 0;
}
