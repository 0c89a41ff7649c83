import { readFile } from 'node:fs/promises';
import { deriveKeysAheadAt } from '../repo/derive-keys-ahead.js';
import type { CommandContext, RepositoryOptions } from './context.js';

/**
 * Starts deriving the repository's wrapping keys (scrypt, ~0.14 s on libuv's thread pool)
 * while the command's code loads (~0.13 s for `coffer backup`, ~0.14 s for `coffer restore`),
 * when that needs no prompt: a local or S3 repository (repo/derive-keys-ahead.ts: on S3 the
 * key files are listed and read first, two round trips), and the passphrase from
 * `--password-file`, `$COFFER_PASSWORD_FILE` or `$COFFER_PASSWORD` (the order of
 * passphrase.ts). The command's own opening of the repository takes the result
 * (repo/keys/index.ts) and reports every problem as before; this never fails and never waits.
 * A repository-server location, or a passphrase to ask for, starts nothing. Should the
 * command open the repository before the key files are read here, it derives by itself: one
 * scrypt spent twice, nothing wrong. main.ts imports this module only for `coffer backup` and
 * `coffer restore`, beside the command's own.
 */
export function deriveKeysEarly(options: RepositoryOptions, context: Pick<CommandContext, 'env'>): void {
  const location = options.repo ?? context.env.COFFER_REPOSITORY;
  if (location === undefined || location === '') return;
  const fileFromEnv = context.env.COFFER_PASSWORD_FILE;
  const file = options.passwordFile ?? (fileFromEnv === '' ? undefined : fileFromEnv);
  const passphrase = file === undefined ? Promise.resolve(context.env.COFFER_PASSWORD) : readFile(file, 'utf8').then((text) => text.replace(/\r?\n$/, ''));
  passphrase
    .then((given) => (given === undefined || given === '' ? 0 : deriveKeysAheadAt(location, given, context.env)))
    .catch(() => undefined); // the command reads the passphrase again and reports what fails
}
