/**
 * @module server
 * Coffer as a service: the state database, the REST API with authentication and roles, the
 * task runner and its worker processes, and the repository server that guest agents write to.
 * Stands on jobs, backup and restore; nothing below imports it.
 */
export { startRepoServer, REPO_SERVER_DEFAULTS, type RepoServerOptions, type RunningRepoServer } from './repo-server/repo-server.js';
export { loadTlsIdentity, type TlsIdentity } from './repo-server/tls-identity.js';
export { addToken, removeToken, readTokens, tokensFile, parseLifetime, type TokenRecord } from './repo-server/token-store.js';
export * from './state/index.js';
export { startService, parseListen, DEFAULT_LISTEN, DEFAULT_STOP_TIMEOUT_MS, SERVICE_VERSION, type ServiceOptions, type RunningService, type DrainHook } from './service.js';
export { parseConfig, ConfigSchema, ConfigInvalidError, type ServiceConfig, type VmSelector, type VmConfig, type JobConfig } from './config/index.js';
export { selectVms } from './inventory/index.js';
export * from './notify/index.js';
export * from './metrics/index.js';
export * from './tasks/index.js';
export * from './scheduler/index.js';
export { startWorker, type WorkerHandle, type WorkerOptions, type WorkerOutcome, type WorkerRates } from './worker/index.js';
export * from './cluster/index.js';
export { addAgentToken, agentTokensFile, AGENT_DEFAULTS, DEFAULT_POLL_SECONDS, MAX_POLL_SECONDS, type AgentBackupReport, type AgentInfo, type Assignment, type PollAnswer } from './agents/index.js';
