import { CofferError } from '../../errors/index.js';
import { initRepository, REPOSITORY_DEFAULTS } from '../../repo/index.js';
import { backendFor, repositoryLocation, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes, parseSize } from '../format.js';
import { readPassphrase } from '../passphrase.js';

export interface InitOptions extends RepositoryOptions {
  insecureNoEncryption?: boolean;
  blockSize?: string;
  compressionLevel?: string;
}

/** `coffer init`: creates an encrypted repository (unencrypted only on explicit request). */
export async function initCommand(options: InitOptions, context: CommandContext): Promise<number> {
  const backend = backendFor(repositoryLocation(options, context), context.env);
  const blockSize = options.blockSize === undefined ? REPOSITORY_DEFAULTS.blockSize : parseSize(options.blockSize);
  const compressionLevel = options.compressionLevel === undefined ? REPOSITORY_DEFAULTS.compressionLevel : Number(options.compressionLevel);
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
    });
    if (given === undefined) {
      throw new CofferError('E_NO_PASSPHRASE', 'a new repository needs a passphrase (COFFER_PASSWORD, COFFER_PASSWORD_FILE, --password-file, or a terminal to ask on); --insecure-no-encryption creates one without');
    }
    passphrase = given;
  }
  let storedDigestKey: string | null = null;
  const config = await initRepository(backend, { passphrase, blockSize, compressionLevel, onStoredDigestKey: (fingerprint) => (storedDigestKey = fingerprint) });
  if (options.json) {
    context.stdout.write(`${JSON.stringify({ id: config.id, location: backend.location, encryption: config.encryption, blockSize: config.blockSize, storedDigestKey })}\n`);
  } else {
    context.stdout.write(
      `created ${config.encryption === 'none' ? 'UNENCRYPTED ' : ''}repository ${config.id.slice(0, 10)} at ${backend.location} (block size ${formatBytes(config.blockSize)}, zstd level ${config.compression.level})\n`,
    );
    if (config.encryption !== 'none') context.stdout.write('keep the passphrase safe: without it the data cannot be read back\n');
    if (storedDigestKey !== null) {
      context.stdout.write(`stored-digest key fingerprint ${storedDigestKey}: give it to whoever keeps the storage, to check it without the passphrase (coffer verify --stored --trust …)\n`);
    }
  }
  return 0;
}
