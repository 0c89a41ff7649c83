/**
 * What the routes stand on, built once by the composition root (service.ts) and passed to each
 * route group: the stores, the audit log, the configuration, the repositories, the task
 * runner and the scheduler, the clock.
 */
import type { FastifyRequest } from 'fastify';
import type { AuditEvent, AuditLog } from '../audit/index.js';
import type { Authenticator, LoginThrottle, SessionStore, TokenStore, UserStore } from '../auth/index.js';
import type { ConfigStore } from '../config/index.js';
import type { RepositoryCatalog } from '../inventory/index.js';
import type { JobScheduler } from '../scheduler/index.js';
import type { TaskRunner } from '../tasks/index.js';
import type { WorkerRegistry } from '../cluster/index.js';
import type { AgentDirectory } from '../agents/index.js';
import type { ApprovalStore } from './approvals.js';

export interface ServiceContext {
  users: UserStore;
  sessions: SessionStore;
  tokens: TokenStore;
  authenticator: Authenticator;
  throttle: LoginThrottle;
  audit: AuditLog;
  config: ConfigStore;
  catalog: RepositoryCatalog;
  approvals: ApprovalStore;
  /** The task runner (runs, tasks, their events) and the scheduler (jobs' runs, previews). */
  work: { runner: TaskRunner; scheduler: JobScheduler };
  /** The workers sharing a PostgreSQL state database (docs/scale.md); absent: none listed. */
  workers?: WorkerRegistry;
  /** Agents' tokens and state (docs/agent.md); absent: the agent routes answer 404. */
  agents?: AgentDirectory;
  now: () => number;
  /** The folders restores may write into (`restore.allowed-targets`, or DATA/restores). */
  restoreTargets: () => readonly string[];
  /** The Secure attribute on the session cookie (off only for --insecure-http). */
  secureCookies: boolean;
  version: string;
}

/** Records an audit entry for a request: the caller and the address come from it. */
export function auditRequest(context: ServiceContext, request: FastifyRequest, event: Omit<AuditEvent, 'actor' | 'address'> & { actor?: string }): Promise<unknown> {
  return context.audit.record({ actor: request.principal?.actor ?? 'anonymous', address: request.ip, ...event });
}
