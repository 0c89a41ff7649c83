/**
 * Opens a configured repository inside a worker from its location and passphrase file (the
 * same library code the CLI runs), and closes it whatever the task does.
 */
import { readFile } from 'node:fs/promises';
import { CofferError } from '../../../errors/index.js';
import { isS3Location, LocalBackend, openRepository, parseS3Location, S3Backend, type Backend, type Repository } from '../../../repo/index.js';
import type { RepositoryRef } from './kind-specs.js';

/** Runs `fn` on the opened repository; closes it after. @throws E_NO_PASSPHRASE when the passphrase file cannot be read. */
export async function withTaskRepository<T>(ref: RepositoryRef, fn: (repo: Repository) => Promise<T>): Promise<T> {
  const file = ref.passphraseFile;
  const passphrase = file === undefined ? undefined : async () => {
    const text = await readFile(file, 'utf8').catch((cause: unknown) => {
      throw new CofferError('E_NO_PASSPHRASE', `repository ${ref.name}: cannot read its passphrase file ${file}`, { cause });
    });
    return text.replace(/\r?\n$/, '');
  };
  const repo = await openRepository(backendOf(ref.url), { passphrase });
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

function backendOf(url: string): Backend {
  if (isS3Location(url)) return new S3Backend(parseS3Location(url));
  return new LocalBackend(url.replace(/^local:/, ''));
}
