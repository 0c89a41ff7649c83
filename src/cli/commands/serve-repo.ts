import { once } from 'node:events';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CofferError } from '../../errors/index.js';
import type { Backend } from '../../repo/index.js';
import { addToken, loadTlsIdentity, parseLifetime, readTokens, removeToken, startRepoServer, tokensFile } from '../../server/index.js';
import { backendFor, type CommandContext } from '../context.js';

/** Options of `coffer serve-repo`. */
export interface ServeRepoOptions {
  repo?: string[];
  listen?: string;
  stateDir?: string;
  cert?: string;
  key?: string;
  json?: boolean;
}

/** Options of `coffer serve-repo token …`. */
export interface TokenOptions {
  stateDir?: string;
  appendOnly?: boolean;
  expires?: string;
  json?: boolean;
}

/**
 * The server's state folder: `--state-dir`, else `$COFFER_REPO_SERVER_STATE`, else
 * `$XDG_STATE_HOME/coffer/repo-server`, else `~/.local/state/coffer/repo-server`.
 */
export function stateDirOf(given: string | undefined, env: NodeJS.ProcessEnv): string {
  if (given !== undefined) return given;
  if (env.COFFER_REPO_SERVER_STATE) return env.COFFER_REPO_SERVER_STATE;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'coffer', 'repo-server');
  return join(env.HOME || homedir(), '.local', 'state', 'coffer', 'repo-server');
}

/** `HOST:PORT` (IPv6 in brackets); default 0.0.0.0:8443. */
function parseListen(text: string | undefined): { host: string; port: number } {
  if (text === undefined) return { host: '0.0.0.0', port: 8443 };
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port > 65535) throw new CofferError('E_USAGE', `--listen ${text}: expected HOST:PORT (e.g. 0.0.0.0:8443, [::]:8443; port 0 picks a free one)`);
  return { host: (match[1] ?? match[2]) as string, port };
}

/**
 * `coffer serve-repo --repo NAME=LOCATION… [--listen HOST:PORT]`: serves repositories over
 * HTTPS to agents until SIGINT/SIGTERM. Prints the URL of each repository and the
 * certificate's SHA-256 fingerprint (what agents pin) once it listens.
 */
export async function serveRepoCommand(options: ServeRepoOptions, context: CommandContext): Promise<number> {
  const stateDir = stateDirOf(options.stateDir, context.env);
  const { host, port } = parseListen(options.listen);
  if (options.repo === undefined || options.repo.length === 0) throw new CofferError('E_USAGE', 'serve-repo needs at least one --repo NAME=PATH_OR_S3_URL');
  const repositories = new Map<string, Backend>();
  for (const spec of options.repo) {
    const match = /^([a-z0-9][a-z0-9._-]{0,63})=(.+)$/.exec(spec);
    if (match === null) throw new CofferError('E_USAGE', `--repo ${spec}: expected NAME=PATH_OR_S3_URL, NAME of [a-z0-9._-]`);
    const [, name, location] = match as unknown as [string, string, string];
    if (repositories.has(name)) throw new CofferError('E_USAGE', `--repo ${name} is given twice`);
    if (/^https?:\/\//i.test(location)) throw new CofferError('E_USAGE', `--repo ${name}: serve a local path or an s3: location, not another server`);
    repositories.set(name, backendFor(location, context.env));
  }
  if ((await readTokens(tokensFile(stateDir))).length === 0) {
    context.stderr.write(`coffer serve-repo: no tokens in ${tokensFile(stateDir)} yet: every request is refused until one is added (coffer serve-repo token add NAME [--append-only])\n`);
  }
  const identity = await loadTlsIdentity(stateDir, { ...(options.cert === undefined ? {} : { certFile: options.cert }), ...(options.key === undefined ? {} : { keyFile: options.key }) });
  const server = await startRepoServer({
    repositories,
    stateDir,
    tls: identity,
    host,
    port,
    log: (line) => context.stderr.write(`${options.json ? JSON.stringify({ type: 'log', message: line }) : `coffer serve-repo: ${line}`}\n`),
  });
  try {
    const urls = [...repositories.keys()].map((name) => ({ name, url: `${server.origin}/${name}` }));
    if (options.json) {
      context.stdout.write(`${JSON.stringify({ origin: server.origin, port: server.port, fingerprint: identity.fingerprint, certificate: identity.certFile, repositories: urls })}\n`);
    } else {
      if (identity.created) context.stdout.write(`created a self-signed certificate in ${identity.certFile}\n`);
      context.stdout.write(`certificate SHA256 fingerprint ${identity.fingerprint}\n`);
      context.stdout.write(`serving on ${server.origin} (tokens in ${tokensFile(stateDir)}); Ctrl-C to stop\n`);
      for (const { url } of urls) context.stdout.write(`  ${url}\n`);
    }
    if (!context.signal.aborted) await once(context.signal, 'abort');
  } finally {
    await server.close();
    for (const backend of repositories.values()) (backend as { destroy?: () => void }).destroy?.();
  }
  return 0;
}

/** `coffer serve-repo token add NAME [--append-only] [--expires 90d]`: prints the secret once. */
export async function tokenAddCommand(name: string, options: TokenOptions, context: CommandContext): Promise<number> {
  const file = tokensFile(stateDirOf(options.stateDir, context.env));
  const expires = options.expires === undefined ? null : new Date(Date.now() + parseLifetime(options.expires));
  const secret = await addToken(file, name, { appendOnly: options.appendOnly === true, expires });
  if (options.json) {
    context.stdout.write(`${JSON.stringify({ name, token: secret, appendOnly: options.appendOnly === true, expires: expires?.toISOString() ?? null })}\n`);
  } else {
    context.stdout.write(`${secret}\n`);
    context.stderr.write(`token ${name} (${options.appendOnly ? 'append-only' : 'full access'}${expires === null ? '' : `, expires ${expires.toISOString()}`}) added; it is shown only this once: give it to the agent (--repo-token-file or COFFER_REPO_TOKEN)\n`);
  }
  return 0;
}

/** `coffer serve-repo token list`. */
export async function tokenListCommand(options: TokenOptions, context: CommandContext): Promise<number> {
  const tokens = await readTokens(tokensFile(stateDirOf(options.stateDir, context.env)));
  const now = Date.now();
  const rows = tokens.map((t) => ({ name: t.name, appendOnly: t.appendOnly, created: t.created, expires: t.expires, expired: t.expires !== null && Date.parse(t.expires) <= now }));
  if (options.json) {
    context.stdout.write(`${JSON.stringify({ tokens: rows })}\n`);
  } else {
    if (rows.length === 0) context.stdout.write('no tokens\n');
    for (const row of rows) {
      context.stdout.write(`${row.name}\t${row.appendOnly ? 'append-only' : 'full'}\tcreated ${row.created}\t${row.expires === null ? 'never expires' : `${row.expired ? 'expired' : 'expires'} ${row.expires}`}\n`);
    }
  }
  return 0;
}

/** `coffer serve-repo token remove NAME`: the token stops working within a second. */
export async function tokenRemoveCommand(name: string, options: TokenOptions, context: CommandContext): Promise<number> {
  await removeToken(tokensFile(stateDirOf(options.stateDir, context.env)), name);
  if (!options.json) context.stdout.write(`token ${name} removed\n`);
  else context.stdout.write(`${JSON.stringify({ removed: name })}\n`);
  return 0;
}
