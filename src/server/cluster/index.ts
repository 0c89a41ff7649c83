/**
 * Scale-out (#10; docs/scale.md): workers on other machines and several stateless servers
 * sharing one PostgreSQL state database. The queue is the `tasks` table (task-queue.ts: one
 * hand-out transaction under an advisory lock, taken only by a worker with a free slot and
 * work for it, limits counted across every worker, leases);
 * workers register and heartbeat (worker-registry.ts); the servers publish the limits and
 * bandwidth rules (cluster-policy.ts), claim each scheduled firing once (firing-claims.ts) and
 * hear every process's live events over LISTEN/NOTIFY (event-relay.ts).
 */
export { publishPolicy, readPolicy, type ClusterPolicy } from './cluster-policy.js';
export { DISPATCH_LOCK_KEY, PostgresTaskQueue, type QueueWorker, type TakeTiming } from './task-queue.js';
export { WorkerRegistry, type HeartbeatAnswer, type WorkerIdentity, type WorkerInfo } from './worker-registry.js';
export { runClusterWorker, DEFAULT_LEASE_MS, idleInTransactionFor, type ClusterWorkerOptions } from './cluster-worker.js';
export { claimFiring, forgetClaims } from './firing-claims.js';
export { EVENT_CHANNEL, listenForEvents, listenForNotifications, relayEvents, type EventSourceReads } from './event-relay.js';
export { wakeOnQueueChanges } from './queue-wakeups.js';
export { databaseNow } from './database-clock.js';
export { startHeartbeats, type HeartbeatOptions } from './heartbeat-loop.js';
export { LeaderLease, tryLead, currentLeader, UPKEEP_ROLE, type LeaderLeaseOptions } from './leader-lease.js';
export { gatedEvents } from './gated-events.js';
