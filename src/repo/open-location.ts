/**
 * A repository named by its location, as users write it after `-r` and as the server's
 * configuration names it. One dispatch for every caller (the CLI with its prompts, the
 * server's worker processes without a terminal):
 *
 * | location                        | backend                                                    |
 * |---------------------------------|------------------------------------------------------------|
 * | `s3:https://HOST/BUCKET/PREFIX` | {@link S3Backend} (forms in backend/s3-location.ts)        |
 * | `https://HOST:PORT/REPO`        | {@link HttpBackend}: a `coffer serve-repo`, with a token   |
 * | `PATH` or `local:PATH`          | {@link LocalBackend}                                       |
 *
 * S3: credentials from the AWS SDK's chain; the region from AWS_REGION or AWS_DEFAULT_REGION
 * when the location names none; the attempts per request from AWS_MAX_ATTEMPTS. A repository
 * server: the token from a file or COFFER_REPO_TOKEN; the server trusted by a pinned
 * fingerprint (or COFFER_REPO_FINGERPRINT), or a CA file, or (neither) the system's CAs. An S3
 * repository is opened with the chunk cache (chunk-cache.ts) under {@link cacheDirectoryOf}.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CofferError } from '../errors/index.js';
import type { Backend } from './backend/backend.js';
import { HttpBackend } from './backend/http-backend.js';
import { isHttpLocation, parseHttpLocation } from './backend/http-location.js';
import { normalizeFingerprint } from './backend/https-transport.js';
import { LocalBackend } from './backend/local-backend.js';
import { s3BackendFromEnvironment } from './backend/s3-backend.js';
import { isS3Location } from './backend/s3-location.js';
import { openRepository, type OpenOptions, type Repository } from './repository.js';

/** How to reach a repository server (`https://` locations); each falls back to the environment. */
export interface RepoServerAccess {
  /** A file holding the token; else `$COFFER_REPO_TOKEN`. */
  tokenFile?: string;
  /** The server certificate's SHA-256 fingerprint to pin; else `$COFFER_REPO_FINGERPRINT`. */
  fingerprint?: string;
  /** A PEM file of CA certificates to trust instead of the system's. */
  cacert?: string;
}

/** What a location's backend may need besides the location. */
export interface LocationOptions {
  /** The environment to read AWS_* and COFFER_REPO_* from (default: none). */
  env?: NodeJS.ProcessEnv;
  repoServer?: RepoServerAccess;
}

/**
 * The backend of a location (see the table above). Opens nothing yet.
 * @throws CofferError E_USAGE for a location of no known kind, an unreadable token or CA file,
 * a repository server location without a token, or both a fingerprint and a CA file.
 */
export function backendForLocation(location: string, options: LocationOptions = {}): Backend {
  const env = options.env ?? {};
  if (isHttpLocation(location)) return repoServerBackend(location, env, options.repoServer ?? {});
  if (isS3Location(location)) return s3BackendFromEnvironment(location, env);
  if (/^[a-z][a-z0-9+]*:/i.test(location) && !location.startsWith('local:')) {
    throw new CofferError('E_USAGE', `repository ${location}: not a local directory, an s3: location or an https:// repository server`);
  }
  return new LocalBackend(location.replace(/^local:/, ''));
}

/**
 * Where Coffer keeps what it may forget (the chunk cache of S3 repositories):
 * `$XDG_CACHE_HOME/coffer`, else `~/.cache/coffer`; none without a home.
 */
export function cacheDirectoryOf(env: NodeJS.ProcessEnv): string | undefined {
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'coffer');
  if (env.HOME) return join(env.HOME, '.cache', 'coffer');
  return undefined;
}

/** Options of {@link openRepositoryAt}. */
export interface OpenLocationOptions extends LocationOptions {
  /** As {@link OpenOptions.passphrase}: a function is called only for an encrypted repository. */
  passphrase?: OpenOptions['passphrase'];
  /** As {@link OpenOptions.passphraseSources}. */
  passphraseSources?: string;
  /** Wraps the location's backend before the repository is opened on it (bandwidth limits, metering). */
  wrapBackend?: (backend: Backend) => Backend;
  threads?: number;
  /** As {@link OpenOptions.startThreads}. */
  startThreads?: boolean;
}

/**
 * Opens the repository at a location: its backend, wrapped as asked, with the chunk cache
 * when it is on S3. Errors as {@link backendForLocation} and {@link openRepository}.
 */
export async function openRepositoryAt(location: string, options: OpenLocationOptions = {}): Promise<Repository> {
  const plain = backendForLocation(location, options);
  const backend = options.wrapBackend === undefined ? plain : options.wrapBackend(plain);
  const cacheDirectory = isS3Location(plain.location) ? cacheDirectoryOf(options.env ?? {}) : undefined;
  return openRepository(backend, {
    passphrase: options.passphrase,
    ...(options.passphraseSources === undefined ? {} : { passphraseSources: options.passphraseSources }),
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ...(options.startThreads === true ? { startThreads: true } : {}),
    ...(cacheDirectory === undefined ? {} : { chunkCache: { directory: cacheDirectory } }),
  });
}

/** The backend of a repository server location, with its token and the way to trust the server (never none). */
function repoServerBackend(location: string, env: NodeJS.ProcessEnv, access: RepoServerAccess): HttpBackend {
  const target = parseHttpLocation(location);
  let token: string | undefined;
  if (access.tokenFile !== undefined) {
    try {
      token = readFileSync(access.tokenFile, 'utf8').trim();
    } catch (error) {
      throw new CofferError('E_USAGE', `cannot read the token file ${access.tokenFile}: ${(error as Error).message}`, { cause: error });
    }
  } else token = env.COFFER_REPO_TOKEN?.trim();
  if (token === undefined || token === '') {
    throw new CofferError('E_USAGE', `no token for ${target.display}: use --repo-token-file FILE or set COFFER_REPO_TOKEN (coffer serve-repo token add prints one)`);
  }
  const fingerprint = access.fingerprint ?? (env.COFFER_REPO_FINGERPRINT || undefined);
  if (fingerprint !== undefined && access.cacert !== undefined) {
    throw new CofferError('E_USAGE', 'give either --repo-fingerprint (COFFER_REPO_FINGERPRINT) or --cacert, not both');
  }
  let ca: Buffer | undefined;
  if (access.cacert !== undefined) {
    try {
      ca = readFileSync(access.cacert);
    } catch (error) {
      throw new CofferError('E_USAGE', `cannot read the CA file ${access.cacert}: ${(error as Error).message}`, { cause: error });
    }
  }
  return new HttpBackend(target, {
    token,
    ...(fingerprint === undefined ? {} : { fingerprint: normalizeFingerprint(fingerprint) }),
    ...(ca === undefined ? {} : { ca }),
  });
}
