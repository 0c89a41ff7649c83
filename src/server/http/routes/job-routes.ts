/**
 * /api/v1/jobs: the jobs of the configuration, the VMs each selects now, and the next runs of
 * its schedule in its time zone; /api/v1/schedules/preview checks a schedule being typed.
 * Runs (starting, cancelling, history) belong to the task runner's routes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseSchedule } from '../../../jobs/index.js';
import { JobSchema, type JobConfig } from '../../config/index.js';
import { selectVms } from '../../inventory/index.js';
import { ApiError } from '../api-error.js';
import { PageQueryProperties, pageList, pageOf } from '../paging.js';
import { defineRoute } from '../route.js';
import { canSee } from '../security-hooks.js';
import type { ServiceContext } from '../service-context.js';
import { nameParams } from './schemas.js';

const JobOutSchema = { ...JobSchema, required: [...JobSchema.required, 'vms'], properties: { ...JobSchema.properties, vms: { type: 'array', items: { type: 'string' } } } } as const;
const RunsSchema = {
  type: 'object',
  required: ['schedule', 'timezone', 'runs'],
  properties: { schedule: { type: 'string' }, timezone: { type: 'string' }, syntax: { type: 'string', enum: ['calendar', 'cron'] }, runs: { type: 'array', items: { type: 'string', format: 'date-time' } } },
} as const;
const CountQuery = { type: 'object', additionalProperties: false, properties: { count: { type: 'integer', minimum: 1, maximum: 100, default: 5 }, after: { type: 'string', format: 'date-time' } } } as const;

export function jobRoutes(app: FastifyInstance, context: ServiceContext): void {
  const config = () => context.config.config;
  const jobOut = (job: JobConfig) => ({ ...job, vms: selectVms(job.select, config().vms ?? []).map((v) => v.name) });
  const jobParam = (r: FastifyRequest) => (r.params as { job: string }).job;
  const find = (r: FastifyRequest) => {
    const job = (config().jobs ?? []).find((j) => j.name === jobParam(r));
    if (job === undefined) throw new ApiError('E_NOT_FOUND', `no job named ${jobParam(r)}`);
    return job;
  };
  const preview = (schedule: string, timezone: string, q: { count: number; after?: string }) => {
    const parsed = parseSchedule(schedule, { timeZone: timezone });
    const after = q.after === undefined ? new Date(context.now()) : new Date(q.after);
    return { schedule, timezone: parsed.timeZone, syntax: parsed.syntax, runs: parsed.preview(after, q.count).map((d) => d.toISOString()) };
  };

  defineRoute(app, {
    method: 'GET',
    url: '/jobs',
    operationId: 'listJobs',
    summary: 'Jobs with the VMs each selects now',
    tag: 'jobs',
    access: { permission: 'inventory.read', filtered: true },
    querystring: { type: 'object', additionalProperties: false, properties: { ...PageQueryProperties, repository: { type: 'string' }, search: { type: 'string', maxLength: 100 } } },
    response: { 200: pageOf(JobOutSchema) },
    async handler(request) {
      const q = request.query as { limit: number; offset: number; repository?: string; search?: string };
      const jobs = (config().jobs ?? [])
        .filter((j) => (q.repository === undefined || j.repository === q.repository) && (q.search === undefined || j.name.includes(q.search)))
        .filter((j) => canSee(request, 'inventory.read', [`/jobs/${j.name}`]))
        .map(jobOut);
      return pageList(jobs, q);
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/jobs/:job',
    operationId: 'getJob',
    summary: 'One job with the VMs it selects now',
    tag: 'jobs',
    access: { permission: 'inventory.read', paths: (r) => [`/jobs/${jobParam(r)}`] },
    params: nameParams('job'),
    response: { 200: JobOutSchema },
    async handler(request) {
      return jobOut(find(request));
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/jobs/:job/next-runs',
    operationId: 'jobNextRuns',
    summary: 'The next runs of a job\'s schedule, in its time zone',
    tag: 'jobs',
    access: { permission: 'inventory.read', paths: (r) => [`/jobs/${jobParam(r)}`] },
    params: nameParams('job'),
    querystring: CountQuery,
    response: { 200: RunsSchema },
    async handler(request) {
      const job = find(request);
      return preview(job.schedule, job.timezone ?? 'UTC', request.query as { count: number; after?: string });
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/schedules/preview',
    operationId: 'previewSchedule',
    summary: 'Check a schedule and show its next runs (400 with the position of a syntax error)',
    tag: 'jobs',
    access: { permission: 'config.read' },
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['schedule'],
      properties: { schedule: { type: 'string', minLength: 1, maxLength: 200 }, timezone: { type: 'string', default: 'UTC' }, count: { type: 'integer', minimum: 1, maximum: 100, default: 5 }, after: { type: 'string', format: 'date-time' } },
    },
    response: { 200: RunsSchema },
    async handler(request) {
      const b = request.body as { schedule: string; timezone: string; count: number; after?: string };
      return preview(b.schedule, b.timezone, b);
    },
  });
}
