import { decodeName } from '../names/index.js';

/**
 * Path globs as administrators write them in excludes and includes (restic's and rsync's
 * habits): `*` any run of characters but `/`, `**` any run including `/`, `?` one character
 * but `/`, `[abc]` / `[!abc]` / `[^abc]` a class, `\x` a literal `x`; everything else literal.
 * A name's byte that is not UTF-8 is written as listings print it (names/byte-names.ts):
 * `\xNN` is the byte NN (`caf\xe9` is the Latin-1 name, a run such as `\xc3\xa9` the
 * character it spells in UTF-8, "é"), also in a class (`[\xe8\xe9]` two bytes, `[\xc3\xa9]` "é");
 * `\\` is a backslash.
 * Returns the source of a regular expression (no anchors: callers decide how a pattern is
 * anchored — at the root when it starts with `/`, at any directory otherwise).
 */
export function globSource(pattern: string, options: { withinName?: boolean } = {}): string {
  // withinName: one name, no folders: `*` and `?` take any character (a `**` is two stars).
  const star = options.withinName === true ? '.*' : '[^/]*';
  const one = options.withinName === true ? '.' : '[^/]';
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') {
      if (pattern[i + 1] === '*' && options.withinName !== true) {
        out += '.*';
        i++;
      } else out += star;
    } else if (c === '?') out += one;
    else if (hexByteAt(pattern, i) !== undefined) {
      const bytes: number[] = [];
      for (let byte = hexByteAt(pattern, i); byte !== undefined; byte = hexByteAt(pattern, i)) {
        bytes.push(byte);
        i += 4;
      }
      i--;
      out += escapeRegExp(decodeName(Uint8Array.from(bytes)));
    } else if (c === '\\' && i + 1 < pattern.length) out += escapeRegExp(pattern[++i] as string);
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) {
        out += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      // A run of \xNN in a class is read as outside one: the characters it spells in UTF-8
      // (`[\xc3\xa9]` is "é"), each byte that spells none a member of its own (`[\xe8\xe9]`).
      const members = body.replace(/(?:\\x[0-9a-fA-F]{2})+|[\\\]^]/g, (match) => (match.length > 1 ? [...decodeName(hexRunBytes(match))].map(classMember).join('') : `\\${match}`));
      out += `[${negate ? '^' : ''}${members}]`;
      i = close;
    } else out += escapeRegExp(c);
  }
  return out;
}

/** `text` as a literal inside a regular expression. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The byte a `\xNN` at `i` spells, or `undefined` when there is none. */
function hexByteAt(pattern: string, i: number): number | undefined {
  if (pattern.charCodeAt(i) !== 0x5c || pattern[i + 1] !== 'x') return undefined;
  const match = /^[0-9a-fA-F]{2}$/.exec(pattern.slice(i + 2, i + 4));
  return match === null ? undefined : Number.parseInt(match[0], 16);
}

/** The bytes of a run of `\xNN`. */
function hexRunBytes(run: string): Uint8Array {
  return Uint8Array.from(run.split('\\x').slice(1), (hex) => Number.parseInt(hex, 16));
}

/** One character inside a class, escaped where a class would read it otherwise. */
function classMember(char: string): string {
  return /[\\\]^-]/.test(char) ? `\\${char}` : char;
}
