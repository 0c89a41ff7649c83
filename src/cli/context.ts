import { CofferError } from '../errors/index.js';
import { backendForLocation, openRepositoryAt, type Backend, type BandwidthLimits, type Repository } from '../repo/index.js';
import { bandwidthLimits, limitBackend, type BandwidthOptions } from './bandwidth.js';
import { readPassphrase } from './passphrase.js';
import { repoServerAccess, type RepoServerClientOptions } from './repo-server-client.js';

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
 * The backend for a location: `s3:https://…`, `https://HOST:PORT/REPO` (a `coffer serve-repo`)
 * or a local path (optionally `local:PATH`); the dispatch is the repository's own
 * (repo/open-location.ts), shared with the server's workers.
 */
export function backendFor(location: string, env: NodeJS.ProcessEnv = {}, client: RepoServerClientOptions = {}): Backend {
  return backendForLocation(location, { env, repoServer: repoServerAccess(client) });
}

/** How {@link openFromOptions} opens a repository. */
export interface OpenHow {
  limits?: BandwidthLimits;
  variable?: 'COFFER_PASSWORD' | 'COFFER_TO_PASSWORD';
  wrapBackend?: (backend: Backend) => Backend;
  startThreads?: boolean;
}

/**
 * Opens the repository named by the options, asking for the passphrase if needed. `limits`
 * (default: from the options' --limit-upload/--limit-download) hold its backend to a
 * bandwidth; `variable` names where the passphrase comes from (`COFFER_TO_PASSWORD` for the
 * destination of a sync); `wrapBackend` wraps the (limited) backend further (a backup's meter);
 * `startThreads` starts the codec threads while the key is derived (repo OpenOptions).
 */
export async function openFromOptions(
  options: RepositoryOptions,
  context: CommandContext,
  how: OpenHow = {},
): Promise<Repository> {
  let shown = repositoryLocation(options, context);
  return openRepositoryAt(shown, {
    env: context.env,
    ...(how.startThreads === true ? { startThreads: true } : {}),
    repoServer: repoServerAccess(options),
    wrapBackend: (backend) => {
      shown = backend.location; // as the backend names it, for the prompt
      const limited = limitBackend(backend, how.limits ?? bandwidthLimits(options), context.signal);
      return how.wrapBackend === undefined ? limited : how.wrapBackend(limited);
    },
    ...(how.variable === 'COFFER_TO_PASSWORD' ? { passphraseSources: 'COFFER_TO_PASSWORD, COFFER_TO_PASSWORD_FILE or --to-password-file' } : {}),
    passphrase: () => readPassphrase({
      passwordFile: options.passwordFile,
      env: context.env,
      variable: how.variable ?? 'COFFER_PASSWORD',
      stdin: context.stdin,
      stderr: context.stderr,
      prompt: `passphrase for ${shown}`,
      confirm: false,
      signal: context.signal,
    }),
  });
}


/** Runs `fn` on the opened repository and closes it whatever happens. */
export async function withRepository<T>(options: RepositoryOptions, context: CommandContext, fn: (repo: Repository) => Promise<T>, how: OpenHow = {}): Promise<T> {
  const repo = await openFromOptions(options, context, how);
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}
