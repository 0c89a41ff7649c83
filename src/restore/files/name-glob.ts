import { globSource } from '../../glob/index.js';

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
  return new RegExp(`^${globSource(pattern, { withinName: true })}$`, `su${caseInsensitive ? 'i' : ''}`);
}
