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

function globSource(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        out += '.*';
        i++;
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) out += escape(pattern[++i] as string);
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) {
        out += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      out += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else out += escape(c);
  }
  return out;
}

function escape(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
