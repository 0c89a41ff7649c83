/**
 * The agents' part of `coffer server`, assembled (docs/agent.md): in `DATA/agents/` the token
 * file (the repository server's format; every agent token append-only), the agents' keys
 * (`keys/`) and the owner records of what each agent wrote (`owners/`); the hub the task runner
 * hands agents' backups to; the protocol's routes; and the agent repository server, a second
 * HTTPS listener with the API's certificate through which agents write into the configured
 * repositories under the repository server's append-only policy.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { CofferError } from '../../errors/index.js';
import { makeFolders } from '../../native/index.js';
import { backendForLocation, type Backend } from '../../repo/index.js';
import { parseDuration, type ServiceConfig } from '../config/index.js';
import { startRepoServer, type RunningRepoServer } from '../repo-server/repo-server.js';
import { addToken, readTokens, removeToken, tokensFile, TokenVerifier } from '../repo-server/token-store.js';
import { AgentHub, type AgentInfo } from './agent-hub.js';
import { AgentKeys } from './agent-keys.js';
import { agentProtocolRoutes } from './agent-protocol-routes.js';

/** Defaults (docs/agent.md): an agent re-polls at once after each answer, so 15 s of silence is a dead agent or link; a run without a window waits an hour for its agent. */
export const AGENT_DEFAULTS = { offlineAfterMs: 15_000, waitOfflineMs: 3_600_000 } as const;

/** The agents' folder of a data directory. */
export function agentsDir(dataDir: string): string {
  return join(dataDir, 'agents');
}

/** The agents' token file of a data directory (`coffer agent token add` writes it too). */
export function agentTokensFile(dataDir: string): string {
  return tokensFile(agentsDir(dataDir));
}

/** Makes an agent token (append-only, bound to `name`); returns its secret, shown once. E_USAGE for a bad or taken name. */
export function addAgentToken(dataDir: string, name: string, expires: Date | null): Promise<string> {
  return addToken(agentTokensFile(dataDir), name, { appendOnly: true, expires });
}

/** What the admin routes use. */
export interface AgentDirectory {
  list(): Promise<(AgentInfo & { created: string; expires: string | null })[]>;
  create(name: string, expires: Date | null): Promise<string>;
  /** Revokes the token, cancels the agent's task, removes its repository keys; returns what could not be removed. E_USAGE: no such agent. */
  revoke(name: string): Promise<string[]>;
}

export interface AgentService {
  readonly hub: AgentHub;
  readonly directory: AgentDirectory;
  /** The protocol's routes, for the app. */
  routes(app: FastifyInstance): void;
  /** Starts the agent repository server (needs TLS); returns its port. */
  serveRepositories(listen: { host: string; port: number; tls: { cert: string; key: string } }): Promise<number>;
  close(): Promise<void>;
}

/** Opens the agents' state in the data directory. */
export async function openAgentService(options: { dataDir: string; config: () => ServiceConfig; log?: (line: string) => void }): Promise<AgentService> {
  const dir = agentsDir(options.dataDir);
  await makeFolders(dir, 0o700);
  const file = tokensFile(dir);
  const verifier = new TokenVerifier(file);
  await verifier.load();
  const keys = new AgentKeys(join(dir, 'keys'), () => options.config().repositories ?? []);
  let repoServer: RunningRepoServer | undefined;
  const durationOf = (text: string | undefined, fallback: number) => (text === undefined ? undefined : parseDuration(text)) ?? fallback;
  const hub = new AgentHub({
    offlineAfterMs: () => durationOf(options.config().agents?.['offline-after'], AGENT_DEFAULTS.offlineAfterMs),
    waitOfflineMs: () => durationOf(options.config().agents?.['wait-offline'], AGENT_DEFAULTS.waitOfflineMs),
    repoPort: () => repoServer?.port,
    passphraseFor: (agent, repository) => keys.passphraseFor(agent, repository),
  });
  // Keys of agents whose token was removed while the server was down (coffer agent token remove).
  const known = new Set((await readTokens(file)).map((t) => t.name));
  for (const name of await keys.agentsWithKeys()) {
    if (known.has(name)) continue;
    for (const problem of await keys.revoke(name)) options.log?.(problem);
  }

  const directory: AgentDirectory = {
    async list() {
      const tokens = await readTokens(file);
      const infos = hub.list(tokens.map((t) => t.name));
      return infos.map((info, i) => ({ ...info, created: (tokens[i] as { created: string }).created, expires: (tokens[i] as { expires: string | null }).expires }));
    },
    create: (name, expires) => addAgentToken(options.dataDir, name, expires),
    async revoke(name) {
      if (!(await readTokens(file)).some((t) => t.name === name)) throw new CofferError('E_USAGE', `no agent named ${name}`);
      await removeToken(file, name);
      await verifier.load();
      hub.revoke(name);
      return keys.revoke(name);
    },
  };

  return {
    hub,
    directory,
    routes: (app) => agentProtocolRoutes(app, hub, verifier),
    async serveRepositories(listen) {
      const repositories = new Map<string, Backend>();
      for (const repo of options.config().repositories ?? []) repositories.set(repo.name, backendForLocation(repo.url, { env: process.env }));
      repoServer = await startRepoServer({ repositories, stateDir: dir, tls: listen.tls, host: listen.host, port: listen.port, ...(options.log === undefined ? {} : { log: options.log }) });
      return repoServer.port;
    },
    async close() {
      hub.close();
      await repoServer?.close();
    },
  };
}
