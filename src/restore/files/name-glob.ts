import { decodeName } from '../../names/index.js';

/**
 * Shell-style name patterns as `find -name` takes them: `*` (any run of characters), `?` (one
 * character, or one byte that is not UTF-8), `[abc]`, `[a-z]`, `[!x]` (or `[^x]`), and `\` to
 * take the next character literally (`\*`, `\\`). Matched against a whole name, never across
 * `/`.
 *
 * Bytes are written as listings print them (names/byte-names.ts): `\xNN` is the byte NN, so
 * `*\xe9` finds a Latin-1 `caf\xe9` whose last byte is E9 (not a name ending in the text
 * `xe9`), and a run such as `\xc3\xa9` is the character it spells in UTF-8 ("é"). In brackets
 * each `\xNN` is one byte: `[\xe8\xe9]`.
 */
export function globToRegExp(pattern: string, caseInsensitive = false): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (hexByteAt(pattern, i) !== undefined) {
      const bytes: number[] = [];
      for (let byte = hexByteAt(pattern, i); byte !== undefined; byte = hexByteAt(pattern, i)) {
        bytes.push(byte);
        i += 4;
      }
      i--;
      source += escapeRegExp(decodeName(Uint8Array.from(bytes)));
    } else if (c === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i] as string);
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) {
        source += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      const members = body.replace(/\\x([0-9a-fA-F]{2})|[\\\]^]/g, (match, hex: string | undefined) => (hex !== undefined ? classMember(byteChar(Number.parseInt(hex, 16))) : `\\${match}`));
      source += `[${negate ? '^' : ''}${members}]`;
      i = close;
    } else source += escapeRegExp(c);
  }
  return new RegExp(`^${source}$`, `su${caseInsensitive ? 'i' : ''}`);
}

/** The byte a `\xNN` at `i` spells, or `undefined` when there is none. */
function hexByteAt(pattern: string, i: number): number | undefined {
  const match = /^\\x([0-9a-fA-F]{2})/.exec(pattern.slice(i, i + 4));
  return match === null ? undefined : Number.parseInt(match[1] as string, 16);
}

/** One byte as a name's character: ASCII as itself, 0x80..0xFF as the raw byte decodeName gives it. */
function byteChar(byte: number): string {
  return byte < 0x80 ? String.fromCharCode(byte) : decodeName(Uint8Array.of(byte));
}

function classMember(char: string): string {
  return /[\\\]^-]/.test(char) ? `\\${char}` : char;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
