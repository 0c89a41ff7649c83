/**
 * @module server
 * What Coffer serves over the network: the REST service (jobs, schedules, roles, the state
 * database) and the repository server that guest agents back up to (`repo-server/`: a
 * repository's backend over HTTPS, per-agent tokens, append-only for agents, each agent
 * seeing only its own snapshots; docs/repository-server.md).
 */
export { startRepoServer, REPO_SERVER_DEFAULTS, type RepoServerOptions, type RunningRepoServer } from './repo-server/repo-server.js';
export { loadTlsIdentity, type TlsIdentity } from './repo-server/tls-identity.js';
export { addToken, removeToken, readTokens, tokensFile, parseLifetime, type TokenRecord } from './repo-server/token-store.js';
