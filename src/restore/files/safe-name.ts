/**
 * Names from a guest's filesystem made safe to create on the host. A guest's disk is
 * untrusted: a name may hold `/` (which would make a path), NUL, control characters, or be
 * `.`/`..`/empty. Such characters are percent-escaped (`/` → `%2F`, NUL → `%00`, ESC →
 * `%1B`); `.`, `..` and empty names cannot be made safe and are refused. Bytes that are not
 * UTF-8 (raw-byte surrogates, see names/byte-names.ts) are kept: a Linux folder and a tar take
 * them; a zip does not ({@link zipName}).
 */
import { encodeName } from '../../names/index.js';

/** Longest file name Linux filesystems take, in bytes of UTF-8. */
const NAME_MAX = 255;

export type SafeName = { ok: true; name: string; escaped: boolean } | { ok: false; reason: string };

export function safeName(name: string): SafeName {
  if (name === '' ) return { ok: false, reason: 'empty name' };
  if (name === '.' || name === '..') return { ok: false, reason: `an entry named ${JSON.stringify(name)} is refused` };
  // eslint-disable-next-line no-control-regex
  const escaped = name.replace(/[\u0000-\u001f\u007f/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  if (encodeName(escaped).length > NAME_MAX) return { ok: false, reason: `name longer than ${NAME_MAX} bytes` };
  return { ok: true, name: escaped, escaped: escaped !== name };
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
