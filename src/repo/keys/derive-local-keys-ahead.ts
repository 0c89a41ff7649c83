import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deriveAhead, parseKeyFile } from './key-file.js';

/**
 * Key files of one repository whose derivation may start ahead: more would spend scrypt's CPU
 * and 64 MiB each on keys the passphrase may never need (a repository with many keys is
 * opened one key file after another, as without this).
 */
export const MAX_KEYS_AHEAD = 4;

/**
 * Starts deriving the wrapping key of every key file of the local repository at `directory`
 * (`keys/<16 hex>`, docs/repository-format.md) from `passphrase`, and returns how many it
 * started (0 when there are more than {@link MAX_KEYS_AHEAD}). Best effort: a directory that
 * holds no repository, an unreadable or damaged key file start nothing; the repository's
 * opening that follows reports them as it always does.
 */
export async function deriveLocalKeysAhead(directory: string, passphrase: string): Promise<number> {
  try {
    const names = (await readdir(join(directory, 'keys'))).filter((name) => /^[0-9a-f]{16}$/.test(name));
    if (names.length > MAX_KEYS_AHEAD) return 0;
    const files = await Promise.all(names.map(async (name) => parseKeyFile(await readFile(join(directory, 'keys', name)), `keys/${name}`)));
    for (const file of files) deriveAhead(file, passphrase);
    return files.length;
  } catch {
    return 0;
  }
}
