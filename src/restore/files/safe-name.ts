/**
 * Names from a guest's filesystem made safe to create on the host. A guest's disk is
 * untrusted: a name may hold `/` (which would make a path), NUL, control characters, or be
 * `.`/`..`/empty. Such characters are percent-escaped (`/` → `%2F`, NUL → `%00`, ESC →
 * `%1B`); `.`, `..` and empty names cannot be made safe and are refused. Bytes that are not
 * UTF-8 (raw-byte surrogates, see names/byte-names.ts) are kept: a Linux folder and a tar take
 * them; a zip does not ({@link zipName}). A name longer than Linux takes (NTFS and FAT
 * count 255 UTF-16 units, up to 765 bytes of UTF-8) is shortened ({@link fitName}), never
 * dropped.
 */
import { createHash } from 'node:crypto';
import { encodeName } from '../../names/index.js';

/** Longest file name Linux filesystems take, in bytes of UTF-8. */
const NAME_MAX = 255;

/** An extension kept whole when a long name is shortened: `.` and at most this many bytes. */
const EXTENSION_KEPT_BYTES = 16;

/**
 * `name` made safe: `escaped` when a character was escaped (or, for a zip, a byte or a
 * backslash), `shortened` when it was too long for Linux and was cut ({@link fitName}).
 */
export type SafeName = { ok: true; name: string; escaped: boolean; shortened: boolean } | { ok: false; reason: string };

/** `name` made safe to create on Linux (`zip`: and to hold in a zip entry's name, {@link zipName}). */
export function safeName(name: string, zip = false): SafeName {
  if (name === '' ) return { ok: false, reason: 'empty name' };
  if (name === '.' || name === '..') return { ok: false, reason: `an entry named ${JSON.stringify(name)} is refused` };
  // eslint-disable-next-line no-control-regex
  let escaped = name.replace(/[\u0000-\u001f\u007f/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  if (zip) escaped = zipName(escaped);
  const fitted = fitName(escaped);
  return { ok: true, name: fitted, escaped: escaped !== name, shortened: fitted !== escaped };
}

/**
 * `name` when it fits in {@link NAME_MAX} bytes; otherwise its start, `~` and the first 8 hex
 * digits of the SHA-256 of the whole name, and its extension (a last `.` and at most
 * {@link EXTENSION_KEPT_BYTES} bytes after it), in at most NAME_MAX bytes: two long names that
 * share their start stay two names, the same name gets the same short name every time, and
 * the file still opens with its program. Cut between characters (a raw byte counts as one).
 */
export function fitName(name: string): string {
  const bytes = encodeName(name);
  if (bytes.length <= NAME_MAX) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 && encodeName(name.slice(dot)).length <= 1 + EXTENSION_KEPT_BYTES ? name.slice(dot) : '';
  const tag = `~${createHash('sha256').update(bytes).digest('hex').slice(0, 8)}`;
  const room = NAME_MAX - encodeName(tag + extension).length;
  let start = '';
  let used = 0;
  for (const char of name.slice(0, name.length - extension.length)) {
    const length = encodeName(char).length;
    if (used + length > room) break;
    start += char;
    used += length;
  }
  return start + tag + extension;
}

/**
 * A safe name as a zip entry name: zip names are UTF-8 text (yazl sets the UTF-8 flag), and
 * zip writers and readers (yazl itself, unzip) take `\` for a folder separator. So each byte
 * that is not UTF-8 is written `%XX` (`caf\xe9` → `caf%E9`) and a backslash `%5C`, as
 * {@link safeName} writes `/`. Returns the name unchanged when it needs neither.
 */
export function zipName(name: string): string {
  return name.replace(/\\|(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g, (c) => {
    const byte = c === '\\' ? 0x5c : c.charCodeAt(0) - 0xdc00;
    return `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  });
}
