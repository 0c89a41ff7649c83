/**
 * GET /api/v1/scheduler/preview: what the scheduler will do. For every job the caller may
 * see: the next runs of its schedule (in its time zone, as ISO instants), whether a run of it
 * is going now, and the forecast of its next run (`forecastRun`: each VM's last backup
 * duration replayed under the limits and the job's window): which VMs fit, which overrun the
 * window, and which will not start at all.
 */
import type { FastifyInstance } from 'fastify';
import { parseSchedule } from '../../../jobs/index.js';
import { defineRoute } from '../route.js';
import { canSee } from '../security-hooks.js';
import type { ServiceContext } from '../service-context.js';

const time = { type: 'string', format: 'date-time' } as const;
const ForecastSchema = {
  type: ['object', 'null'],
  required: ['firing', 'windowEnd', 'end', 'entries', 'willNotStart', 'overruns'],
  properties: {
    firing: time,
    windowEnd: { type: ['string', 'null'], format: 'date-time' },
    end: { type: ['string', 'null'], format: 'date-time', description: 'when the last VM is expected to end' },
    entries: {
      type: 'array',
      items: {
        type: 'object',
        required: ['vm', 'host', 'outcome', 'start', 'end'],
        properties: { vm: { type: 'string' }, host: { type: 'string' }, outcome: { type: 'string', enum: ['fits', 'overruns', 'will-not-start'] }, start: { type: ['string', 'null'], format: 'date-time' }, end: { type: ['string', 'null'], format: 'date-time' } },
      },
    },
    willNotStart: { type: 'array', items: { type: 'string' } },
    overruns: { type: 'array', items: { type: 'string' } },
  },
} as const;

export function schedulerRoutes(app: FastifyInstance, context: ServiceContext): void {
  const { runner, scheduler } = context.work;

  defineRoute(app, {
    method: 'GET',
    url: '/scheduler/preview',
    operationId: 'schedulerPreview',
    summary: 'The next runs of every job, and whether each job\'s next run fits its window (which VMs will not)',
    tag: 'runs',
    access: { permission: 'inventory.read', filtered: true },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        count: { type: 'integer', minimum: 1, maximum: 50, default: 5 },
        after: { type: 'string', format: 'date-time', description: 'preview from this instant (default now)' },
        defaultDurationMinutes: { type: 'integer', minimum: 1, maximum: 1440, default: 30, description: 'the expected duration of a VM never backed up' },
      },
    },
    response: {
      200: {
        type: 'object',
        required: ['at', 'jobs'],
        properties: {
          at: time,
          jobs: {
            type: 'array',
            items: {
              type: 'object',
              required: ['job', 'schedule', 'timezone', 'running', 'nextRuns', 'forecast'],
              properties: {
                job: { type: 'string' },
                schedule: { type: 'string' },
                timezone: { type: 'string' },
                running: { type: 'boolean' },
                nextRuns: { type: 'array', items: time },
                forecast: ForecastSchema,
                problem: { type: 'string', description: 'why there is no forecast' },
              },
            },
          },
        },
      },
    },
    async handler(request) {
      const q = request.query as { count: number; after?: string; defaultDurationMinutes: number };
      const after = q.after === undefined ? new Date(context.now()) : new Date(q.after);
      const jobs = (context.config.config.jobs ?? []).filter((j) => canSee(request, 'inventory.read', [`/jobs/${j.name}`]));
      const out = [];
      for (const job of jobs) {
        const timezone = job.timezone ?? 'UTC';
        const nextRuns = parseSchedule(job.schedule, { timeZone: timezone }).preview(after, q.count).map((d) => d.toISOString());
        let forecast = null;
        let problem: string | undefined;
        try {
          const f = await scheduler.forecast(job.name, { after, defaultDurationMs: q.defaultDurationMinutes * 60_000 });
          const iso = (d: Date | undefined) => (d === undefined ? null : d.toISOString());
          forecast = {
            firing: f.firing.toISOString(),
            windowEnd: iso(f.windowEnd),
            end: iso(f.forecast.end),
            entries: f.forecast.entries.map((e) => ({ vm: e.task.vm, host: e.task.host, outcome: e.outcome, start: iso(e.start), end: iso(e.end) })),
            willNotStart: f.forecast.willNotStart.map((t) => t.vm),
            overruns: f.forecast.overruns.map((t) => t.vm),
          };
        } catch (error) {
          problem = error instanceof Error ? error.message : String(error);
        }
        out.push({ job: job.name, schedule: job.schedule, timezone, running: await runner.jobRunning(job.name), nextRuns, forecast, ...(problem === undefined ? {} : { problem }) });
      }
      return { at: after.toISOString(), jobs: out };
    },
  });
}
