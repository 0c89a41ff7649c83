import { readFile } from 'node:fs/promises';
import { deriveLocalKeysAhead } from '../repo/keys/index.js';
import type { CommandContext, RepositoryOptions } from './context.js';

/**
 * Starts deriving the repository's wrapping keys (scrypt, ~0.14 s on libuv's thread pool)
 * while the command's code loads (~0.13 s for `coffer backup`), when that needs no prompt: a
 * local repository, and the passphrase from `--password-file`, `$COFFER_PASSWORD_FILE` or
 * `$COFFER_PASSWORD` (the order of passphrase.ts). The command's own opening of the
 * repository takes the result (repo/keys/index.ts) and reports every problem as before; this
 * never fails and never waits. An S3 or repository-server location, or a passphrase to ask
 * for, starts nothing. Should the command open the repository before the key files are read
 * here (it loads ~270 modules first), it derives by itself: one scrypt spent twice, nothing
 * wrong. main.ts imports this module only for `coffer backup`, beside the command's own.
 */
export function deriveKeysEarly(options: RepositoryOptions, context: Pick<CommandContext, 'env'>): void {
  const location = options.repo ?? context.env.COFFER_REPOSITORY;
  if (location === undefined || location === '' || (/^[a-z][a-z0-9+]*:/i.test(location) && !location.startsWith('local:'))) return;
  const fileFromEnv = context.env.COFFER_PASSWORD_FILE;
  const file = options.passwordFile ?? (fileFromEnv === '' ? undefined : fileFromEnv);
  const passphrase = file === undefined ? Promise.resolve(context.env.COFFER_PASSWORD) : readFile(file, 'utf8').then((text) => text.replace(/\r?\n$/, ''));
  passphrase
    .then((given) => (given === undefined || given === '' ? 0 : deriveLocalKeysAhead(location.replace(/^local:/, ''), given)))
    .catch(() => undefined); // the command reads the passphrase again and reports what fails
}
