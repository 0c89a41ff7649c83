import { CofferError } from '../../errors/index.js';
import { describeLock, initRepository, MAX_LOCK_DAYS, REPOSITORY_DEFAULTS, type ObjectLockPolicy } from '../../repo/index.js';
import { backendFor, repositoryLocation, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes, parseSize } from '../format.js';
import { readPassphrase } from '../passphrase.js';

export interface InitOptions extends RepositoryOptions {
  insecureNoEncryption?: boolean;
  blockSize?: string;
  compressionLevel?: string;
  lockDays?: string;
  lockMode?: string;
  format?: string;
}

/** `--lock-days N [--lock-mode compliance|governance]` as a policy (mode compliance by default). */
function lockPolicy(options: InitOptions): ObjectLockPolicy | undefined {
  if (options.lockDays === undefined) {
    if (options.lockMode !== undefined) throw new CofferError('E_USAGE', '--lock-mode goes with --lock-days N');
    return undefined;
  }
  const days = Number(options.lockDays);
  if (!/^\d*\.?\d+$/.test(options.lockDays) || !(days > 0) || days > MAX_LOCK_DAYS) {
    throw new CofferError('E_USAGE', `--lock-days ${options.lockDays}: give a number of days above 0 and at most ${MAX_LOCK_DAYS} (fractions allowed)`);
  }
  const mode = options.lockMode ?? 'compliance';
  if (mode !== 'compliance' && mode !== 'governance') throw new CofferError('E_USAGE', `--lock-mode ${mode}: give compliance or governance`);
  return { mode, days };
}

/** `coffer init`: creates an encrypted repository (unencrypted only on explicit request). */
export async function initCommand(options: InitOptions, context: CommandContext): Promise<number> {
  const backend = backendFor(repositoryLocation(options, context), context.env, options);
  const blockSize = options.blockSize === undefined ? REPOSITORY_DEFAULTS.blockSize : parseSize(options.blockSize);
  const compressionLevel = options.compressionLevel === undefined ? REPOSITORY_DEFAULTS.compressionLevel : Number(options.compressionLevel);
  if (!/^\d{1,2}$/.test(options.compressionLevel ?? '0') || compressionLevel > 19) {
    throw new CofferError('E_USAGE', `--compression-level ${options.compressionLevel ?? ''}: give a zstd level from 0 to 19 (default ${REPOSITORY_DEFAULTS.compressionLevel})`);
  }
  const objectLock = lockPolicy(options);
  // The library's default, 2 (packs, docs/repository-format.md §19: fewer, larger objects, 7 %
  // less stored, one PUT per 8 MiB on S3); `--format 1` still makes the one-object-per-chunk
  // layout, which every Coffer since the first reads.
  const format = options.format === undefined ? REPOSITORY_DEFAULTS.format : Number(options.format);
  if (format !== 1 && format !== 2) throw new CofferError('E_USAGE', `--format ${options.format}: give 2 (packs, the default) or 1 (one object per chunk)`);
  let passphrase: string | null = null;
  if (!options.insecureNoEncryption) {
    const given = await readPassphrase({
      passwordFile: options.passwordFile,
      env: context.env,
      variable: 'COFFER_PASSWORD',
      stdin: context.stdin,
      stderr: context.stderr,
      prompt: `new passphrase for ${backend.location}`,
      confirm: true,
      signal: context.signal,
    });
    if (given === undefined) {
      throw new CofferError('E_NO_PASSPHRASE', 'a new repository needs a passphrase (COFFER_PASSWORD, COFFER_PASSWORD_FILE, --password-file, or a terminal to ask on); --insecure-no-encryption creates one without');
    }
    passphrase = given;
  }
  let storedDigestKey: string | null = null;
  const config = await initRepository(backend, {
    passphrase,
    blockSize,
    compressionLevel,
    format,
    ...(objectLock === undefined ? {} : { objectLock }),
    onStoredDigestKey: (fingerprint) => (storedDigestKey = fingerprint),
  });
  if (options.json) {
    context.stdout.write(`${JSON.stringify({ id: config.id, location: backend.location, format: config.version, encryption: config.encryption, blockSize: config.blockSize, ...(config.objectLock === undefined ? {} : { objectLock: config.objectLock }), storedDigestKey })}\n`);
  } else {
    context.stdout.write(
      `created ${config.encryption === 'none' ? 'UNENCRYPTED ' : ''}repository ${config.id.slice(0, 10)} at ${backend.location} (format ${config.version}${config.version === 2 ? ', packs' : ''}, block size ${formatBytes(config.blockSize)}, zstd level ${config.compression.level})\n`,
    );
    if (config.objectLock !== undefined) context.stdout.write(`Object Lock: ${describeLock(config.objectLock)}; snapshots cannot be forgotten, nor their data deleted, before then\n`);
    if (config.encryption !== 'none') context.stdout.write('keep the passphrase safe: without it the data cannot be read back\n');
    if (storedDigestKey !== null) {
      context.stdout.write(`stored-digest key fingerprint ${storedDigestKey}: give it to whoever keeps the storage, to check it without the passphrase (coffer verify --stored --trust …)\n`);
    }
  }
  return 0;
}
