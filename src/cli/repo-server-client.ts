import { readFileSync } from 'node:fs';
import { CofferError } from '../errors/index.js';
import { HttpBackend, normalizeFingerprint, parseHttpLocation } from '../repo/index.js';

/** The options that reach a repository server (`-r https://HOST:PORT/REPO`). */
export interface RepoServerClientOptions {
  /** A file holding the token (`coffer serve-repo token add` printed it); else `$COFFER_REPO_TOKEN`. */
  repoTokenFile?: string;
  /** The server certificate's SHA-256 fingerprint to pin; else `$COFFER_REPO_FINGERPRINT`. */
  repoFingerprint?: string;
  /** A PEM file of CA certificates to trust instead of the system's. */
  cacert?: string;
}

/**
 * The backend of a repository server location, with its token and the way to trust the
 * server: a pinned fingerprint, or a CA file, or (neither) the system's CAs. Never none.
 */
export function httpBackendFor(location: string, env: NodeJS.ProcessEnv, options: RepoServerClientOptions): HttpBackend {
  const target = parseHttpLocation(location);
  let token: string | undefined;
  if (options.repoTokenFile !== undefined) {
    try {
      token = readFileSync(options.repoTokenFile, 'utf8').trim();
    } catch (error) {
      throw new CofferError('E_USAGE', `cannot read the token file ${options.repoTokenFile}: ${(error as Error).message}`, { cause: error });
    }
  } else token = env.COFFER_REPO_TOKEN?.trim();
  if (token === undefined || token === '') {
    throw new CofferError('E_USAGE', `no token for ${target.display}: use --repo-token-file FILE or set COFFER_REPO_TOKEN (coffer serve-repo token add prints one)`);
  }
  const fingerprint = options.repoFingerprint ?? (env.COFFER_REPO_FINGERPRINT || undefined);
  if (fingerprint !== undefined && options.cacert !== undefined) {
    throw new CofferError('E_USAGE', 'give either --repo-fingerprint (COFFER_REPO_FINGERPRINT) or --cacert, not both');
  }
  let ca: Buffer | undefined;
  if (options.cacert !== undefined) {
    try {
      ca = readFileSync(options.cacert);
    } catch (error) {
      throw new CofferError('E_USAGE', `cannot read the CA file ${options.cacert}: ${(error as Error).message}`, { cause: error });
    }
  }
  return new HttpBackend(target, {
    token,
    ...(fingerprint === undefined ? {} : { fingerprint: normalizeFingerprint(fingerprint) }),
    ...(ca === undefined ? {} : { ca }),
  });
}
