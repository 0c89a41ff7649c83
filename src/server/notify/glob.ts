/**
 * Name globs in rules (`nightly-*`, `db-??`): `*` any run of characters, `?` one character,
 * everything else literal, matched against the whole name, case-sensitive.
 */

/** True when `name` matches `glob`. */
export function matchesGlob(glob: string, name: string): boolean {
  let pattern = '^';
  for (const ch of glob) {
    if (ch === '*') pattern += '.*';
    else if (ch === '?') pattern += '.';
    else pattern += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`${pattern}$`, 's').test(name);
}
