/**
 * Agents managed by the server (docs/agent.md): machines running `coffer agent` connect out,
 * long-poll for their backups, run them locally and write through the agent repository
 * server with a key of their own. The hub is the task runner's remote worker for VMs whose
 * source is `{agent: NAME}`; the protocol's routes live under `/agent/v1`.
 */
export { AgentHub, type AgentHello, type AgentInfo, type PollAnswer } from './agent-hub.js';
export { openAgentService, addAgentToken, agentTokensFile, agentsDir, AGENT_DEFAULTS, type AgentDirectory, type AgentService } from './agent-service.js';
export { AGENT_PREFIX, DEFAULT_POLL_SECONDS, MAX_POLL_SECONDS } from './agent-protocol-routes.js';
export { parseAgentEnd, backupResultOf, type AgentBackupReport, type AgentEnd } from './agent-result.js';
export type { Assignment } from './remote-task.js';
