/**
 * How runs and tasks appear in the API: their JSON schemas (shared by the runs, tasks and
 * events routes, so the OpenAPI document describes them once), and the paths they live under
 * for the grants (a task under its VM, host, job and repository; a run under its job and its
 * VMs and their hosts): a caller sees a run or a task when a grant covers any one of them.
 */
import type { FastifyRequest } from 'fastify';
import type { Permission } from '../../auth/index.js';
import type { ServiceConfig } from '../../config/index.js';
import type { RunInfo, TaskInfo } from '../../tasks/index.js';
import { canSee } from '../security-hooks.js';

const nullableText = { type: ['string', 'null'] } as const;
const time = { type: 'string', format: 'date-time' } as const;
const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;

export const TASK_STATUSES = ['queued', 'running', 'succeeded', 'warning', 'failed', 'cancelled', 'interrupted'] as const;
export const RUN_STATUSES = ['running', 'succeeded', 'warning', 'failed', 'cancelled', 'skipped'] as const;

/** A backup's figures (issue #8, per task and per VM). */
export const BackupResultSchema = {
  type: ['object', 'null'],
  additionalProperties: true,
  properties: {
    snapshot: { type: 'string' },
    started: time,
    ended: time,
    durationMs: { type: 'number' },
    bytesLogical: { type: 'number' },
    bytesRead: { type: 'number' },
    bytesNew: { type: 'number' },
    bytesStored: { type: 'number' },
    throughput: { type: 'number', description: 'bytes read per second' },
    changeRate: { type: 'number', description: 'new bytes over logical bytes, 0..1' },
    mode: { type: 'string', enum: ['full', 'incremental'] },
    modeReason: { type: 'string' },
    consistency: { type: 'string', enum: ['application', 'crash', 'unknown'] },
    warnings: { type: 'array', items: { type: 'string' } },
    bottleneck: { type: 'string', description: 'source, repository, cpu or throttle' },
    time: { type: 'object', additionalProperties: { type: 'number' } },
  },
} as const;

export const TaskSchema = {
  type: 'object',
  required: ['id', 'runId', 'kind', 'owner', 'status', 'vm', 'host', 'job', 'repository', 'attempt', 'progress', 'created', 'started', 'ended', 'error', 'result'],
  properties: {
    id: { type: 'string' },
    runId: nullableText,
    kind: { type: 'string' },
    owner: { type: 'string' },
    status: { type: 'string', enum: [...TASK_STATUSES] },
    vm: nullableText,
    host: nullableText,
    datastore: nullableText,
    repository: nullableText,
    job: nullableText,
    attempt: { type: 'integer' },
    retryOf: nullableText,
    notBefore: nullableTime,
    progress: { type: 'number', minimum: 0, maximum: 1 },
    created: time,
    started: nullableTime,
    ended: nullableTime,
    error: { type: ['object', 'null'], required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
    result: BackupResultSchema,
    report: { type: ['object', 'null'], additionalProperties: true, description: 'a task other than a backup: summary, warnings, figures and its kind\'s detail (instant recovery, while it serves: exports with NBD URIs, qemuCommand, startedAt)' },
  },
} as const;

export const RunSchema = {
  type: 'object',
  required: ['id', 'job', 'reason', 'status', 'owner', 'vms', 'created', 'ended'],
  properties: {
    id: { type: 'string' },
    job: nullableText,
    reason: { type: 'string', description: 'schedule, missed, on-demand, vm, failed-again or after:JOB' },
    status: { type: 'string', enum: [...RUN_STATUSES] },
    owner: { type: 'string' },
    firing: nullableTime,
    windowEnd: nullableTime,
    cancelAtWindowEnd: { type: 'boolean' },
    vms: { type: 'array', items: { type: 'string' } },
    detail: nullableText,
    created: time,
    ended: nullableTime,
  },
} as const;

/** A run in the runs list: its number of VMs and its tasks' counts by outcome instead of the names. */
export const RunListItemSchema = {
  type: 'object',
  required: ['id', 'job', 'reason', 'status', 'owner', 'vmCount', 'outcomes', 'created', 'ended'],
  properties: {
    ...Object.fromEntries(Object.entries(RunSchema.properties).filter(([key]) => key !== 'vms')),
    vmCount: { type: 'integer', description: 'how many VMs the run covers (their names: GET /runs/{id})' },
    outcomes: {
      type: 'object',
      description: 'how many of its VMs\' tasks (the last attempt of each) are in each state, e.g. {"succeeded": 598, "failed": 2}',
      additionalProperties: { type: 'integer' },
      properties: Object.fromEntries(TASK_STATUSES.map((status) => [status, { type: 'integer' }])),
    },
  },
} as const;

export const LogLineSchema = {
  type: 'object',
  required: ['seq', 'at', 'level', 'line'],
  properties: { seq: { type: 'integer' }, at: time, level: { type: 'string', enum: ['info', 'warning', 'error'] }, line: { type: 'string' } },
} as const;

/** `{ id }` as a params schema (a run's or a task's id). */
export const IdParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-fA-F-]{1,64}$' } } } as const;

/** The paths a task lives under. */
export function taskPaths(task: Pick<TaskInfo, 'vm' | 'host' | 'job' | 'repository'>): string[] {
  const paths = [
    ...(task.vm === null ? [] : [`/vms/${task.vm}`]),
    ...(task.host === null ? [] : [`/hosts/${task.host}`]),
    ...(task.job === null ? [] : [`/jobs/${task.job}`]),
    ...(task.repository === null ? [] : [`/repositories/${task.repository}`]),
  ];
  return paths.length === 0 ? ['/'] : paths;
}

/** The paths a run lives under: its job, its VMs and their hosts (from the configuration). */
export function runPaths(run: Pick<RunInfo, 'job' | 'vms'>, config: ServiceConfig): string[] {
  const hostOf = hostsOf(config);
  const hosts = new Set(run.vms.flatMap((vm) => hostOf.get(vm) ?? []));
  const paths = [...(run.job === null ? [] : [`/jobs/${run.job}`]), ...run.vms.map((vm) => `/vms/${vm}`), ...[...hosts].map((h) => `/hosts/${h}`)];
  return paths.length === 0 ? ['/'] : paths;
}

/** VM → host of a configuration, made once per configuration (a run of 600 VMs looked each up in the list of VMs). */
const hostMaps = new WeakMap<ServiceConfig, Map<string, string>>();
function hostsOf(config: ServiceConfig): Map<string, string> {
  let map = hostMaps.get(config);
  if (map === undefined) {
    map = new Map((config.vms ?? []).flatMap((v) => (v.host === undefined ? [] : [[v.name, v.host] as [string, string]])));
    hostMaps.set(config, map);
  }
  return map;
}

export function canSeeTask(request: FastifyRequest, permission: Permission, task: TaskInfo): boolean {
  return canSee(request, permission, taskPaths(task));
}

export function canSeeRun(request: FastifyRequest, permission: Permission, run: RunInfo, config: ServiceConfig): boolean {
  return canSee(request, permission, runPaths(run, config));
}
