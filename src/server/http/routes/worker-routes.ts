/**
 * /api/v1/workers: the `coffer worker` processes sharing the PostgreSQL state database
 * (docs/scale.md): the hosts each reaches, its tasks running and done, throughput, last
 * heartbeat, whether it is alive and draining; and draining one for maintenance (it takes
 * nothing new and exits when its tasks end). Audit-logged. With SQLite (one process) the list
 * is empty.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../api-error.js';
import { defineRoute } from '../route.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { nameParams } from './schemas.js';

/** A worker that has not heartbeated for this long is shown as not alive. */
const STALE_MS = 90_000;

const time = { type: 'string', format: 'date-time' } as const;
const WorkerSchema = {
  type: 'object',
  required: ['name', 'hosts', 'capacity', 'version', 'machine', 'pid', 'started', 'lastHeartbeat', 'stopped', 'alive', 'draining', 'tasksRunning', 'tasksDone', 'bytesRead', 'throughput'],
  properties: {
    name: { type: 'string' },
    hosts: { type: ['array', 'null'], items: { type: 'string' }, description: 'the hosts it reaches; null: every host' },
    capacity: { type: 'integer', description: 'tasks at once' },
    version: { type: 'string' },
    machine: { type: ['string', 'null'] },
    pid: { type: ['integer', 'null'] },
    started: time,
    lastHeartbeat: time,
    stopped: { type: ['string', 'null'], format: 'date-time' },
    alive: { type: 'boolean', description: `heartbeated within ${STALE_MS / 1000} s and not stopped` },
    draining: { type: 'boolean' },
    tasksRunning: { type: 'integer' },
    tasksDone: { type: 'integer' },
    bytesRead: { type: 'integer', description: 'source bytes its finished backups read' },
    throughput: { type: 'integer', description: 'bytes read per second since it started' },
  },
} as const;

export function workerRoutes(app: FastifyInstance, context: ServiceContext): void {
  defineRoute(app, {
    method: 'GET',
    url: '/workers',
    operationId: 'listWorkers',
    summary: 'The workers sharing the state database: reachable hosts, tasks running, throughput, last heartbeat, draining',
    tag: 'workers',
    access: { permission: 'inventory.read' },
    response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: WorkerSchema } } } },
    async handler() {
      return { items: context.workers === undefined ? [] : await context.workers.list(STALE_MS) };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/workers/:name/drain',
    operationId: 'drainWorker',
    summary: 'Drain a worker: it takes no new task and exits when its running tasks end',
    tag: 'workers',
    access: { permission: 'config.write' },
    params: nameParams('name'),
    response: { 200: WorkerSchema },
    async handler(request) {
      const { name } = request.params as { name: string };
      const registry = context.workers;
      const known = registry === undefined ? undefined : (await registry.list(STALE_MS)).find((w) => w.name === name);
      if (registry === undefined || known === undefined) throw new ApiError('E_NOT_FOUND', `no worker named ${name}`);
      await registry.drain(name);
      await auditRequest(context, request, { action: 'worker.drain', target: `/workers/${name}`, outcome: 'success' });
      return { ...known, draining: true };
    },
  });
}
