/**
 * /api/v1/runs and the on-demand starts: the runs of jobs (scheduled, on demand, one VM, the
 * failed VMs again), listed with filters and paging, one run, cancelling a run; and
 * `POST /jobs/{job}/run`, `POST /jobs/{job}/run-failed`, `POST /vms/{vm}/backup`. Starting and
 * cancelling are audit-logged. The work itself is the task runner's and the scheduler's.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { selectVms } from '../../inventory/index.js';
import { vmTarget } from '../../service-config.js';
import { ApiError } from '../api-error.js';
import { CursorQueryProperties, PageQueryProperties, pageOf } from '../paging.js';
import { defineRoute } from '../route.js';
import { canSee } from '../security-hooks.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { vmPaths } from './inventory-routes.js';
import { nameParams } from './schemas.js';
import type { RunStatus } from '../../tasks/index.js';
import { canSeeRun, IdParams, RUN_STATUSES, RunListItemSchema, RunSchema, TaskSchema } from './work-views.js';

export function runRoutes(app: FastifyInstance, context: ServiceContext): void {
  const { runner, scheduler } = context.work;
  const config = () => context.config.config;
  const actor = (request: FastifyRequest) => request.principal?.actor ?? 'anonymous';
  const findJob = (name: string) => {
    const job = (config().jobs ?? []).find((j) => j.name === name);
    if (job === undefined) throw new ApiError('E_NOT_FOUND', `no job named ${name}`);
    return job;
  };
  const visibleRun = async (request: FastifyRequest, permission: 'inventory.read' | 'job.cancel') => {
    const run = await runner.getRun((request.params as { id: string }).id);
    if (!canSeeRun(request, 'inventory.read', run, config())) throw new ApiError('E_NOT_FOUND', `no run ${run.id}`);
    if (!canSeeRun(request, permission, run, config())) throw new ApiError('E_FORBIDDEN', `you lack the permission ${permission} on run ${run.id}`);
    return run;
  };

  defineRoute(app, {
    method: 'GET',
    url: '/runs',
    operationId: 'listRuns',
    summary: 'Runs of jobs, newest first (filters: job, status), each with its number of VMs and their tasks\' counts by outcome',
    description: 'A run\'s VM names are on its own page (GET /runs/{id}), not in the list. Page with `cursor` (the `next` of the previous page); `offset` still works. A caller whose grants do not cover `/` sees only the runs of the jobs, VMs and hosts granted; a page may then hold fewer than `limit` items.',
    tag: 'runs',
    access: { permission: 'inventory.read', filtered: true },
    querystring: { type: 'object', additionalProperties: false, properties: { ...PageQueryProperties, ...CursorQueryProperties, job: { type: 'string', maxLength: 100 }, status: { type: 'string', enum: [...RUN_STATUSES] } } },
    response: { 200: pageOf(RunListItemSchema) },
    async handler(request) {
      const q = request.query as { limit: number; offset: number; cursor?: string; job?: string; status?: RunStatus };
      const filter = { ...(q.job === undefined ? {} : { job: q.job }), ...(q.status === undefined ? {} : { status: q.status }) };
      // A caller granted on `/` sees every run: the names (for the grants) are not even parsed.
      const everything = canSee(request, 'inventory.read', ['/']);
      const page = await runner.listRunSummaries({ ...filter, limit: q.limit, ...(q.cursor === undefined ? { after: q.offset } : { cursor: q.cursor }) }, !everything);
      const total = await runner.countRuns(filter);
      const visible = page.items.filter((r) => everything || canSeeRun(request, 'inventory.read', { ...r, vms: r.vms ?? [] }, config()));
      const outcomes = await runner.taskOutcomes(visible.map((r) => r.id));
      const items = visible.map(({ vms: _vms, ...run }) => ({ ...run, outcomes: outcomes.get(run.id) ?? {} }));
      return { items, total, limit: q.limit, offset: q.cursor === undefined ? q.offset : 0, next: page.cursor ?? null };
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/runs/:id',
    operationId: 'getRun',
    summary: 'One run with its tasks',
    tag: 'runs',
    access: { permission: 'inventory.read', filtered: true },
    params: IdParams,
    response: { 200: { ...RunSchema, required: [...RunSchema.required, 'tasks'], properties: { ...RunSchema.properties, tasks: { type: 'array', items: TaskSchema } } } },
    async handler(request) {
      const run = await visibleRun(request, 'inventory.read');
      return { ...run, tasks: (await runner.listTasks({ runId: run.id, limit: 1000 })).items.reverse() };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/runs/:id/cancel',
    operationId: 'cancelRun',
    summary: 'Cancel every task of a run still queued or running (running ones stop cleanly: no snapshot is written)',
    tag: 'runs',
    access: { permission: 'job.cancel', filtered: true },
    params: IdParams,
    response: { 200: RunSchema },
    async handler(request) {
      const run = await visibleRun(request, 'job.cancel');
      const after = await runner.cancelRun(run.id, actor(request));
      await auditRequest(context, request, { action: 'run.cancel', target: `/runs/${run.id}`, outcome: 'success', details: { job: run.job, vms: run.vms } });
      return after;
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/jobs/:job/run',
    operationId: 'runJob',
    summary: 'Run a job now: one backup task per VM it selects (they start as the limits allow)',
    tag: 'runs',
    access: { permission: 'job.run', paths: (r) => [`/jobs/${(r.params as { job: string }).job}`] },
    params: nameParams('job'),
    response: { 202: RunSchema },
    async handler(request, reply) {
      const { job } = request.params as { job: string };
      findJob(job);
      const run = await scheduler.runJob(job, actor(request));
      await auditRequest(context, request, { action: 'run.start', target: `/jobs/${job}`, outcome: 'success', details: { run: run.id, reason: run.reason, vms: run.vms } });
      return reply.code(202).send(run);
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/jobs/:job/run-failed',
    operationId: 'runJobFailedAgain',
    summary: 'Run again just the VMs that failed (or were interrupted, or did not get their turn) in the job\'s last run',
    tag: 'runs',
    access: { permission: 'job.run', paths: (r) => [`/jobs/${(r.params as { job: string }).job}`] },
    params: nameParams('job'),
    response: { 202: RunSchema },
    async handler(request, reply) {
      const { job } = request.params as { job: string };
      findJob(job);
      if ((await runner.failedVmsOf(job)).length === 0) throw new ApiError('E_CONFLICT', `no VM failed in the last run of job ${job}`);
      const run = await scheduler.runFailedAgain(job, actor(request));
      await auditRequest(context, request, { action: 'run.start', target: `/jobs/${job}`, outcome: 'success', details: { run: run.id, reason: run.reason, vms: run.vms } });
      return reply.code(202).send(run);
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/vms/:vm/backup',
    operationId: 'backupVm',
    summary: 'Back up one VM now, for a job that selects it (default: the first one) or to a repository',
    tag: 'runs',
    access: {
      permission: 'backup.run',
      paths: (r) => {
        const name = (r.params as { vm: string }).vm;
        const vm = (config().vms ?? []).find((v) => v.name === name);
        return vm === undefined ? [`/vms/${name}`] : vmPaths(vm);
      },
    },
    params: nameParams('vm'),
    body: {
      type: ['object', 'null'],
      additionalProperties: false,
      properties: {
        job: { type: 'string', maxLength: 100, description: 'the job whose repository and tag the snapshot gets; it must select the VM' },
        repository: { type: 'string', maxLength: 100, description: 'or: a repository, without a job' },
      },
    },
    response: { 202: { type: 'object', required: ['run', 'task'], properties: { run: RunSchema, task: TaskSchema } } },
    async handler(request, reply) {
      const { vm: name } = request.params as { vm: string };
      const body = (request.body ?? {}) as { job?: string; repository?: string };
      const vm = (config().vms ?? []).find((v) => v.name === name);
      if (vm === undefined) throw new ApiError('E_NOT_FOUND', `no VM named ${name}`);
      if (body.job !== undefined && body.repository !== undefined) throw new ApiError('E_VALIDATION', 'give a job or a repository, not both');
      let run;
      if (body.repository !== undefined) {
        if ((config().repositories ?? []).every((r) => r.name !== body.repository)) throw new ApiError('E_NOT_FOUND', `no repository named ${body.repository}`);
        run = await runner.getRun((await runner.backupNow(vmTarget(config(), vm, body.repository), actor(request))).runId as string);
      } else {
        const jobs = (config().jobs ?? []).filter((j) => selectVms(j.select, [vm]).length > 0);
        const job = body.job === undefined ? jobs[0] : jobs.find((j) => j.name === body.job);
        if (job === undefined) {
          throw new ApiError(body.job === undefined ? 'E_CONFLICT' : 'E_NOT_FOUND', body.job === undefined ? `no job selects VM ${name}: name a repository` : `no job ${body.job} selects VM ${name}`);
        }
        run = await scheduler.runVm(job.name, name, actor(request));
      }
      const [task] = (await runner.listTasks({ runId: run.id, limit: 1 })).items;
      await auditRequest(context, request, { action: 'backup.start', target: `/vms/${name}`, outcome: 'success', details: { run: run.id, job: run.job, task: task?.id } });
      return reply.code(202).send({ run, task });
    },
  });
}
