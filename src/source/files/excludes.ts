import { readFile } from 'node:fs/promises';
import { CofferError } from '../../errors/index.js';
import { globSource } from '../../glob/index.js';
import { hostPath } from '../../names/index.js';

/**
 * What a file backup leaves out, decided per path before it is read:
 * - glob patterns (`--exclude`, `--exclude-file`): `*` any run of characters but `/`, `**`
 *   any run including `/`, `?` one character, `[abc]`/`[!a-z]` classes, `\` escapes. A pattern
 *   without `/` matches an entry's name anywhere (`*.tmp`, `node_modules`); with a `/` it
 *   matches the whole absolute path, from the start when it begins with `/` (`/var/cache/**`)
 *   and at any depth otherwise (`cache/*.bin`). An excluded directory is not descended into.
 * - `excludeCaches`: the contents of a directory holding a valid `CACHEDIR.TAG` (the Cache
 *   Directory Tagging Specification: the file starts with the 43 bytes
 *   `Signature: 8a477f597d28d172789f06886806bc55`), except the tag itself.
 * - `oneFileSystem`: what lies on another filesystem than the path it was reached from (mount
 *   points are kept, empty).
 * - `largerThan`: files above this many bytes.
 */
export interface ExcludeOptions {
  patterns?: string[];
  /** Files of patterns, one a line; blank lines and lines starting with `#` are skipped. */
  patternFiles?: string[];
  excludeCaches?: boolean;
  oneFileSystem?: boolean;
  largerThan?: number;
}

/** The 43 bytes a valid CACHEDIR.TAG starts with. */
export const CACHEDIR_TAG_SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55';

/** Compiled exclusion rules. */
export class Excludes {
  private constructor(
    private readonly byName: RegExp[],
    private readonly byPath: RegExp[],
    readonly options: ExcludeOptions,
  ) {}

  /** Compiles the patterns and reads the pattern files (`E_USAGE` if one cannot be read). */
  static async compile(options: ExcludeOptions): Promise<Excludes> {
    const patterns = [...(options.patterns ?? [])];
    for (const file of options.patternFiles ?? []) {
      const text = await readFile(file, 'utf8').catch((error: unknown) => {
        throw new CofferError('E_USAGE', `--exclude-file ${file}: ${(error as Error).message}`);
      });
      for (const line of text.split('\n')) {
        const pattern = line.trim();
        if (pattern !== '' && !pattern.startsWith('#')) patterns.push(pattern);
      }
    }
    const byName: RegExp[] = [];
    const byPath: RegExp[] = [];
    for (const pattern of patterns) {
      const trimmed = pattern.length > 1 ? pattern.replace(/\/+$/, '') : pattern;
      if (!trimmed.includes('/')) byName.push(new RegExp(`^${globSource(trimmed)}$`, 's'));
      else byPath.push(new RegExp(`^${trimmed.startsWith('/') ? '' : '(?:.*/)?'}${globSource(trimmed)}$`, 's'));
    }
    return new Excludes(byName, byPath, options);
  }

  /**
   * What decides which entries these rules leave out, as one string: the compiled patterns
   * (the pattern files' too, as read), the cache tags, the size limit and --one-file-system.
   */
  get fingerprint(): string {
    return JSON.stringify([this.byName.map((re) => re.source), this.byPath.map((re) => re.source), this.options.excludeCaches === true, this.options.largerThan ?? null, this.options.oneFileSystem === true]);
  }

  /** Whether an entry is excluded by a pattern (`path` absolute, `name` its last component). */
  matches(path: string, name: string): boolean {
    return this.byName.some((re) => re.test(name)) || this.byPath.some((re) => re.test(path));
  }

  /** Whether a file of `size` bytes is too large to back up. */
  tooLarge(size: number): boolean {
    return this.options.largerThan !== undefined && size > this.options.largerThan;
  }

  /** Whether a directory holds a valid cache tag (and its contents are left out). */
  async isTaggedCache(directory: string): Promise<boolean> {
    if (this.options.excludeCaches !== true) return false;
    const head = await readFile(hostPath(`${directory}/CACHEDIR.TAG`)).then((b) => b.subarray(0, CACHEDIR_TAG_SIGNATURE.length).toString('latin1'), () => '');
    return head === CACHEDIR_TAG_SIGNATURE;
  }
}
