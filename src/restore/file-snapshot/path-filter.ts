import { globSource } from '../../glob/index.js';

/**
 * `--include` and `--exclude` of a file restore. Patterns are globs: `*` any run of
 * characters but `/`, `**` any run including `/`, `?` one character, `[…]` a class. A
 * pattern without `/` matches an entry's name at any depth (`*.conf`); one with `/` matches
 * the whole snapshot path (`/etc/ssh/**`, `/home/ann`). An excluded entry is skipped with all
 * below it; with includes, an entry is restored when a pattern matches it or a directory
 * above it, and the directories leading to it are created.
 */
export class PathFilter {
  private readonly include: ((path: string, name: string) => boolean)[];
  private readonly exclude: ((path: string, name: string) => boolean)[];

  constructor(include: string[], exclude: string[]) {
    this.include = include.map(matcher);
    this.exclude = exclude.map(matcher);
  }

  /** `skip`, `restore`, or `descend` (a directory not selected itself: look below it). */
  decide(path: string, name: string, insideSelected: boolean): 'skip' | 'restore' | 'descend' {
    if (this.exclude.some((m) => m(path, name))) return 'skip';
    if (insideSelected || this.include.length === 0 || this.include.some((m) => m(path, name))) return 'restore';
    return 'descend';
  }
}

function matcher(pattern: string): (path: string, name: string) => boolean {
  const trimmed = pattern.length > 1 ? pattern.replace(/\/+$/, '') : pattern;
  if (!trimmed.includes('/')) {
    const re = new RegExp(`^${globSource(trimmed)}$`, 's');
    return (_path, name) => re.test(name);
  }
  const re = new RegExp(`^${trimmed.startsWith('/') ? '' : '(?:.*/)?'}${globSource(trimmed)}$`, 's');
  return (path) => re.test(path);
}
