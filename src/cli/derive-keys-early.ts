import { deriveKeysAheadAt } from '../repo/derive-keys-ahead.js';
import type { CommandContext, RepositoryOptions } from './context.js';
import { readPassphraseFile } from './passphrase-file.js';

/**
 * Starts deriving the repository's wrapping keys (scrypt, ~0.14 s on libuv's thread pool)
 * while the command's code loads (~0.13 s for `coffer backup`, ~0.14 s for `coffer restore`),
 * when that needs no prompt: a local or S3 repository (repo/derive-keys-ahead.ts: on S3 the
 * key files are listed and read first, two round trips), and the passphrase from
 * `--password-file`, `$COFFER_PASSWORD_FILE` or `$COFFER_PASSWORD` (the order of
 * passphrase.ts). The command's own opening of the repository takes the result
 * (repo/keys/index.ts) and reports every problem as before; this never fails.
 * A repository-server location, or a passphrase to ask for, starts nothing. Should the
 * command open the repository before the key files are read here, it derives by itself: one
 * scrypt spent twice, nothing wrong. main.ts imports this module for every command that opens
 * a repository with its passphrase, and waits for the answer before it imports the command's
 * own code: that answer comes once scrypt is started on a local repository (a few ms: reading
 * the key files), and after at most {@link MAX_WAIT_MS} otherwise (S3: two round trips), the
 * derivation going on. Loading the command first had started scrypt only once ~0.1 s of its
 * modules had loaded (`coffer verify`, perf, 2026-11-27): on the critical path.
 */
export async function deriveKeysEarly(options: RepositoryOptions, context: Pick<CommandContext, 'env'>): Promise<void> {
  const location = options.repo ?? context.env.COFFER_REPOSITORY;
  if (location === undefined || location === '') return;
  const fileFromEnv = context.env.COFFER_PASSWORD_FILE;
  const file = options.passwordFile ?? (fileFromEnv === '' ? undefined : fileFromEnv);
  // Read once per process: the command's own read gets this answer (a pipe can be read only once).
  const passphrase = file === undefined ? Promise.resolve(context.env.COFFER_PASSWORD) : readPassphraseFile(file);
  const started = passphrase
    .then((given) => (given === undefined || given === '' ? 0 : deriveKeysAheadAt(location, given, context.env)))
    .catch(() => 0); // the command reads the passphrase again and reports what fails
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([started, new Promise((resolve) => (timer = setTimeout(resolve, MAX_WAIT_MS)))]);
  clearTimeout(timer);
}

/** Longest the command's code waits for the derivation to start. */
export const MAX_WAIT_MS = 25;
