import { join } from 'node:path';
import { CofferError } from '../errors/index.js';
import { isHttpLocation, isS3Location, LocalBackend, openRepository, parseS3Location, S3Backend, type Backend, type BandwidthLimits, type S3BackendOptions, type Repository } from '../repo/index.js';
import { bandwidthLimits, limitBackend, type BandwidthOptions } from './bandwidth.js';
import { readPassphrase } from './passphrase.js';
import { httpBackendFor, type RepoServerClientOptions } from './repo-server-client.js';

/** What every command receives: the process's streams, environment and an abort signal. */
export interface CommandContext {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

/**
 * The same context with standard output kept in memory (`captured()` returns it): for a
 * command that runs another one and prints both results as one document (`forget --prune
 * --json`).
 */
export function withCapturedStdout(context: CommandContext): { context: CommandContext; captured: () => string } {
  const parts: string[] = [];
  const stdout = { write: (chunk: string | Uint8Array) => (parts.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')), true) };
  return { context: { ...context, stdout: stdout as unknown as NodeJS.WriteStream }, captured: () => parts.join('') };
}

/** Options every repository command takes (the bandwidth limits only where offered). */
export interface RepositoryOptions extends BandwidthOptions, RepoServerClientOptions {
  repo?: string;
  passwordFile?: string;
  json?: boolean;
}

/** The repository location from `-r` or `$COFFER_REPOSITORY`. */
export function repositoryLocation(options: RepositoryOptions, context: CommandContext): string {
  const location = options.repo ?? context.env.COFFER_REPOSITORY;
  if (location === undefined || location === '') {
    throw new CofferError('E_USAGE', 'no repository given: use -r PATH (or -r s3:https://HOST/BUCKET/PREFIX, or -r https://HOST:PORT/REPO) or set COFFER_REPOSITORY');
  }
  return location;
}

/**
 * The backend for a location: `s3:https://…` (an S3-compatible bucket, see
 * repo/backend/s3-location.ts for the forms; credentials from the AWS SDK's chain, the region
 * from AWS_REGION or AWS_DEFAULT_REGION when the location names none, the attempts per request
 * from AWS_MAX_ATTEMPTS), `https://HOST:PORT/REPO` (a `coffer serve-repo`, see
 * repo-server-client.ts), or a local path (optionally `local:PATH`).
 */
export function backendFor(location: string, env: NodeJS.ProcessEnv = {}, client: RepoServerClientOptions = {}): Backend {
  if (isHttpLocation(location)) return httpBackendFor(location, env, client);
  if (isS3Location(location)) {
    const options: S3BackendOptions = {};
    const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
    if (region) options.region = region;
    const attempts = Number(env.AWS_MAX_ATTEMPTS);
    if (Number.isInteger(attempts) && attempts >= 1) options.maxAttempts = attempts;
    return new S3Backend(parseS3Location(location), options);
  }
  if (/^[a-z][a-z0-9+]*:/i.test(location) && !location.startsWith('local:')) {
    throw new CofferError('E_USAGE', `repository ${location}: not a local directory, an s3: location or an https:// repository server`);
  }
  return new LocalBackend(location.replace(/^local:/, ''));
}

/**
 * Opens the repository named by the options, asking for the passphrase if needed. `limits`
 * (default: from the options' --limit-upload/--limit-download) hold its backend to a
 * bandwidth; `variable` names where the passphrase comes from (`COFFER_TO_PASSWORD` for the
 * destination of a sync).
 */
export async function openFromOptions(
  options: RepositoryOptions,
  context: CommandContext,
  how: { limits?: BandwidthLimits; variable?: 'COFFER_PASSWORD' | 'COFFER_TO_PASSWORD' } = {},
): Promise<Repository> {
  const backend = limitBackend(backendFor(repositoryLocation(options, context), context.env, options), how.limits ?? bandwidthLimits(options), context.signal);
  const passphrase = () => readPassphrase({
    passwordFile: options.passwordFile,
    env: context.env,
    variable: how.variable ?? 'COFFER_PASSWORD',
    stdin: context.stdin,
    stderr: context.stderr,
    prompt: `passphrase for ${backend.location}`,
    confirm: false,
  });
  const cacheDirectory = isS3Location(backend.location) ? cacheDirectoryOf(context.env) : undefined;
  return openRepository(backend, { passphrase, ...(cacheDirectory === undefined ? {} : { chunkCache: { directory: cacheDirectory } }) });
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

/** Runs `fn` on the opened repository and closes it whatever happens. */
export async function withRepository<T>(options: RepositoryOptions, context: CommandContext, fn: (repo: Repository) => Promise<T>): Promise<T> {
  const repo = await openFromOptions(options, context);
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}
