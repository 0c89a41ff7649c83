/**
 * A light entry of repo/ (besides index.ts; architecture.test.ts lists it): starts deriving
 * the wrapping keys of the repository at a location while a command's code still loads, so
 * that the repository's opening finds its scrypt (~0.14 s) under way or done
 * (repo/keys/index.ts). It loads the key-file code and, for S3, the backend's own signed
 * requests (~17 ms to import, the AWS SDK not among them), against the ~140 ms a restore's
 * code takes: the key files are listed and read, and their scrypt started, before the
 * command opens the repository. The open then lists and reads them again (two small requests
 * more) and unwraps with the key derived here.
 *
 * | location                 | key files read                                        |
 * |--------------------------|-------------------------------------------------------|
 * | `PATH` or `local:PATH`   | from the folder (keys/derive-local-keys-ahead.ts)     |
 * | `s3:…`                   | listed and read from the bucket (one backend, closed) |
 * | anything else            | none (a repository server: an agent's token, kept for the command itself) |
 */
import { isS3Location } from './backend/s3-location.js';
import { deriveLocalKeysAhead, deriveStoredKeysAhead } from './keys/index.js';

/**
 * Starts deriving the wrapping keys of the repository at `location` from `passphrase`;
 * returns how many derivations were started. Never fails (0 instead): the command's own
 * opening reports every problem.
 */
export async function deriveKeysAheadAt(location: string, passphrase: string, env: NodeJS.ProcessEnv): Promise<number> {
  try {
    if (isS3Location(location)) {
      // Imported here: a local repository's derivation starts without waiting for it.
      const { s3BackendFromEnvironment } = await import('./backend/s3-backend.js');
      const backend = s3BackendFromEnvironment(location, env);
      try {
        return await deriveStoredKeysAhead(backend, passphrase);
      } finally {
        backend.destroy();
      }
    }
    if (/^[a-z][a-z0-9+]*:/i.test(location) && !location.startsWith('local:')) return 0;
    return await deriveLocalKeysAhead(location.replace(/^local:/, ''), passphrase);
  } catch {
    return 0;
  }
}
