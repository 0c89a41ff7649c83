/**
 * /api/v1/tasks: every task (a VM backup today), listed with filters and paging; one task with
 * its figures, optionally waiting (`?wait=true`, at most `timeout` seconds) until it ends;
 * cancelling it; and its log, a page at a time after a line number.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../api-error.js';
import { CursorQueryProperties, PageQueryProperties, pageOf } from '../paging.js';
import { defineRoute } from '../route.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { canSeeTask, IdParams, LogLineSchema, TASK_STATUSES, TaskSchema } from './work-views.js';

/** `?wait=true` waits this long by default, and at most {@link MAX_WAIT_S}. */
export const DEFAULT_WAIT_S = 30;
export const MAX_WAIT_S = 600;

export function taskRoutes(app: FastifyInstance, context: ServiceContext): void {
  const { runner } = context.work;
  const visibleTask = async (request: FastifyRequest, permission: 'inventory.read' | 'job.cancel') => {
    const task = await runner.getTask((request.params as { id: string }).id);
    if (!canSeeTask(request, 'inventory.read', task)) throw new ApiError('E_NOT_FOUND', `no task ${task.id}`);
    if (!canSeeTask(request, permission, task)) throw new ApiError('E_FORBIDDEN', `you lack the permission ${permission} on task ${task.id}`);
    return task;
  };

  defineRoute(app, {
    method: 'GET',
    url: '/tasks',
    operationId: 'listTasks',
    summary: 'Tasks, newest first (filters: run, status, vm, job)',
    description: 'Page with `cursor` (the `next` of the previous page): a seek however deep, no task twice or skipped while tasks are added; `offset` still works. A caller whose grants do not cover `/` sees only the tasks of the VMs, hosts, jobs and repositories granted; a page may then hold fewer than `limit` items. With `wait=true` and a `run`, waits (at most `timeout` seconds) until every task of the run has ended.',
    tag: 'tasks',
    access: { permission: 'inventory.read', filtered: true },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...PageQueryProperties,
        ...CursorQueryProperties,
        run: { type: 'string', maxLength: 64 },
        status: { type: 'string', enum: [...TASK_STATUSES] },
        vm: { type: 'string', maxLength: 100 },
        job: { type: 'string', maxLength: 100 },
        wait: { type: 'boolean', default: false },
        timeout: { type: 'integer', minimum: 1, maximum: MAX_WAIT_S, default: DEFAULT_WAIT_S },
      },
    },
    response: { 200: pageOf(TaskSchema) },
    async handler(request) {
      const q = request.query as { limit: number; offset: number; cursor?: string; run?: string; status?: (typeof TASK_STATUSES)[number]; vm?: string; job?: string; wait: boolean; timeout: number };
      if (q.wait && q.run === undefined) throw new ApiError('E_VALIDATION', 'wait=true needs a run: GET /tasks?run=ID&wait=true');
      if (q.wait && q.run !== undefined) await waitForRun(context, q.run, q.timeout * 1000);
      const filter = { ...(q.run === undefined ? {} : { runId: q.run }), ...(q.status === undefined ? {} : { status: q.status }), ...(q.vm === undefined ? {} : { vm: q.vm }), ...(q.job === undefined ? {} : { job: q.job }) };
      const page = await runner.listTasks({ ...filter, limit: q.limit, ...(q.cursor === undefined ? { after: q.offset } : { cursor: q.cursor }) });
      const total = await runner.countTasks(filter);
      return { items: page.items.filter((t) => canSeeTask(request, 'inventory.read', t)), total, limit: q.limit, offset: q.cursor === undefined ? q.offset : 0, next: page.cursor ?? null };
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/tasks/:id',
    operationId: 'getTask',
    summary: 'One task with its figures; `wait=true` answers when it has ended, or at `timeout` seconds with its state then',
    tag: 'tasks',
    access: { permission: 'inventory.read', filtered: true },
    params: IdParams,
    querystring: { type: 'object', additionalProperties: false, properties: { wait: { type: 'boolean', default: false }, timeout: { type: 'integer', minimum: 1, maximum: MAX_WAIT_S, default: DEFAULT_WAIT_S } } },
    response: { 200: TaskSchema },
    async handler(request) {
      const q = request.query as { wait: boolean; timeout: number };
      const task = await visibleTask(request, 'inventory.read');
      return q.wait ? runner.waitForTask(task.id, q.timeout * 1000) : task;
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/tasks/:id/cancel',
    operationId: 'cancelTask',
    summary: 'Cancel a task: a queued one at once, a running one cleanly (no snapshot is written); an ended one is left as it is',
    tag: 'tasks',
    access: { permission: 'job.cancel', filtered: true },
    params: IdParams,
    response: { 200: TaskSchema },
    async handler(request) {
      const task = await visibleTask(request, 'job.cancel');
      const after = await runner.cancelTask(task.id, request.principal?.actor ?? 'anonymous');
      await auditRequest(context, request, { action: 'task.cancel', target: `/tasks/${task.id}`, outcome: 'success', details: { vm: task.vm, job: task.job, status: task.status } });
      return after;
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/tasks/:id/log',
    operationId: 'getTaskLog',
    summary: 'A task\'s log lines after line `after` (0: from the start); `next` is the `after` of the next page',
    tag: 'tasks',
    access: { permission: 'inventory.read', filtered: true },
    params: IdParams,
    querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'integer', minimum: 0, default: 0 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
    response: { 200: { type: 'object', required: ['items', 'next'], properties: { items: { type: 'array', items: LogLineSchema }, next: { type: ['integer', 'null'] } } } },
    async handler(request) {
      const q = request.query as { after: number; limit: number };
      const task = await visibleTask(request, 'inventory.read');
      const page = await runner.taskLog(task.id, q);
      return { items: page.items, next: page.next ?? null };
    },
  });
}

/** Waits until no task of the run is queued or running (or the deadline). */
async function waitForRun(context: ServiceContext, runId: string, timeoutMs: number): Promise<void> {
  const { runner } = context.work;
  await runner.getRun(runId);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runner.getRun(runId);
    if (run.status !== 'running') return;
    const left = deadline - Date.now();
    if (left <= 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        runner.events.off('run', onRun);
        resolve();
      };
      const onRun = (changed: { id: string; status: string }) => {
        if (changed.id === runId && changed.status !== 'running') done();
      };
      const timer = setTimeout(done, Math.min(left, 1000));
      runner.events.on('run', onRun);
    });
  }
}
