/**
 * Actions on repositories and snapshots, each started as a task (worker/kinds/) and answered
 * at once with 202, the task, and `Location: /api/v1/tasks/{id}` (follow it there, or over
 * the events stream): restore, test restore, instant recovery (and its stop), verify, prune,
 * forget by policy, sync. Destructive ones (prune, forget) wait for a second administrator
 * when `security.four-eyes` is on: 202 with an approval request instead, and the task starts
 * when it is approved. Every start is audit-logged with who, what and from where.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TARGET_FORMATS, type TargetFormat } from '../../../disk/index.js';
import { makeFolders } from '../../../native/index.js';
import { parseRetentionDuration, parseVerificationSubset, type RetentionPolicy } from '../../../repo/index.js';
import type { TaskInfo, TaskRequest } from '../../tasks/index.js';
import { ApiError } from '../api-error.js';
import { confineRestoreTarget } from '../restore-targets.js';
import { API_PREFIX, defineRoute } from '../route.js';
import { canSee } from '../security-hooks.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { NameParam, nameParams } from './schemas.js';
import { knownRepository, permittedSnapshot, repositoryRef, runnerOf, SnapshotParams, vmPaths } from './snapshot-access.js';

/** A task as these routes answer it (the tasks routes describe it in full). */
export const TaskOutSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['id', 'kind', 'status', 'owner', 'progress', 'created'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    status: { type: 'string' },
    owner: { type: 'string' },
    vm: { type: ['string', 'null'] },
    repository: { type: ['string', 'null'] },
    progress: { type: 'number' },
    created: { type: 'string' },
    started: { type: ['string', 'null'] },
    ended: { type: ['string', 'null'] },
    error: { type: ['object', 'null'], additionalProperties: true },
    report: { type: ['object', 'null'], additionalProperties: true, description: 'summary, warnings, figures and the kind\'s detail (instant recovery: exports with NBD URIs, qemuCommand)' },
  },
} as const;

const ApprovalOutSchema = { type: 'object', required: ['approval', 'status'], properties: { approval: { type: 'string' }, status: { type: 'string' } } } as const;
const TaskOrApproval = { oneOf: [TaskOutSchema, ApprovalOutSchema] } as const;

const KeepCount = { type: 'integer', minimum: -1, maximum: 100000, description: '-1: unlimited' } as const;
const PolicySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    last: KeepCount, hourly: KeepCount, daily: KeepCount, weekly: KeepCount, monthly: KeepCount, yearly: KeepCount,
    within: { type: 'string', pattern: '^(\\d+[ymdh])+$', description: 'e.g. 7d, 1y6m' },
    tags: { type: 'array', items: { type: 'array', items: { type: 'string' } } },
  },
} as const;

/** How long a prune waits for running backups to end by default. */
const PRUNE_WAIT_MINUTES = 30;

export function taskActionRoutes(app: FastifyInstance, context: ServiceContext): void {
  const actor = (r: FastifyRequest) => r.principal?.actor ?? 'anonymous';
  const started = (reply: FastifyReply, task: TaskInfo) => reply.code(202).header('location', `${API_PREFIX}/tasks/${task.id}`).send(task);
  const submit = (request: TaskRequest) => runnerOf(context).submitTask(request);
  const repoParam = (r: FastifyRequest) => (r.params as { repo: string }).repo;

  // Destructive operations through four eyes: the approval runs the same submission.
  context.approvals.register('repository.prune', async (args, approver) => {
    const task = await submit({ kind: 'prune', owner: String(args.owner), repository: String(args.repository), spec: args.spec });
    await context.audit.record({ actor: approver, address: '-', action: 'repository.prune', target: `/repositories/${String(args.repository)}`, outcome: 'success', details: { approved: true, task: task.id } });
    return `prune started as task ${task.id}`;
  });
  context.approvals.register('repository.forget', async (args, approver) => {
    const task = await submit({ kind: 'forget', owner: String(args.owner), repository: String(args.repository), spec: args.spec });
    await context.audit.record({ actor: approver, address: '-', action: 'repository.forget', target: `/repositories/${String(args.repository)}`, outcome: 'success', details: { approved: true, task: task.id } });
    return `forget started as task ${task.id}`;
  });

  defineRoute(app, {
    method: 'POST',
    url: '/repositories/:repo/snapshots/:snapshot/restore',
    operationId: 'restoreSnapshot',
    summary: 'Restore a snapshot\'s disks to a path on the server in any disk format, or as a clone VM; a file snapshot\'s files into a folder (a task)',
    description: '`to` is an absolute path on the server inside a folder `restore.allowed-targets` names (default DATA/restores; 403 E_RESTORE_TARGET_REFUSED otherwise, symlinks resolved): a file for one disk, a folder for several (each `<disk>.<ext>`), or with `asVm` the folder for the clone\'s disks and its definition (new UUID and MACs). Existing files are refused unless `overwrite`. A file snapshot (`backup --files`, an agent\'s) is restored into `to` as a folder, which must be empty or absent (409 E_CONFLICT otherwise), with its files\' metadata (owners by name as root, as `coffer restore`); `asVm`, `disk`, a `format` other than raw and `overwrite` are refused for it (400).',
    tag: 'restore',
    access: { permission: 'restore.run', filtered: true },
    params: SnapshotParams,
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['to'],
      properties: {
        to: { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/' },
        format: { type: 'string', enum: [...TARGET_FORMATS], default: 'raw' },
        disk: { type: 'string', maxLength: 100 },
        overwrite: { type: 'boolean', default: false },
        asVm: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
      },
    },
    response: { 202: TaskOutSchema },
    async handler(request, reply) {
      const { repo, snapshot: ref } = request.params as { repo: string; snapshot: string };
      const snapshot = await permittedSnapshot(context, request, repo, ref, 'restore.run');
      const body = request.body as { to: string; format: TargetFormat; disk?: string; overwrite: boolean; asVm?: string };
      if (snapshot.files !== undefined && (body.asVm !== undefined || body.disk !== undefined || body.format !== 'raw' || body.overwrite)) {
        throw new ApiError('E_VALIDATION', `snapshot ${snapshot.id.slice(0, 8)} holds files, not disks: its files are restored into the empty folder \`to\` (asVm, disk, format and overwrite are for disks)`);
      }
      const to = await confineRestoreTarget(body.to, context.restoreTargets());
      // A file snapshot goes into an empty or new folder: say so now, not as a failed task later.
      if (snapshot.files !== undefined && (await readdir(to).catch(() => [])).length > 0) throw new ApiError('E_CONFLICT', `${to} is not empty: a file snapshot restores into an empty or new folder`);
      const task = await submit({
        kind: 'restore', owner: actor(request), repository: repo, vm: snapshot.vm,
        spec: { repository: repositoryRef(knownRepository(context, repo)), snapshot: snapshot.id, to, format: body.format, overwrite: body.overwrite, ...(body.disk === undefined ? {} : { disk: body.disk }), ...(body.asVm === undefined ? {} : { asVm: body.asVm }) },
      });
      await auditRequest(context, request, { action: body.asVm === undefined ? 'restore.start' : 'restore.clone', target: `/repositories/${repo}/snapshots/${snapshot.id}`, outcome: 'success', details: { vm: snapshot.vm, to, format: body.format, task: task.id, ...(body.asVm === undefined ? {} : { asVm: body.asVm }) } });
      return started(reply, task);
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/repositories/:repo/snapshots/:snapshot/test-restore',
    operationId: 'testRestoreSnapshot',
    summary: 'Prove a snapshot restores: every block read back, every file walked, each filesystem checked (a task)',
    tag: 'restore',
    access: { permission: 'restore.run', filtered: true },
    params: SnapshotParams,
    body: { type: 'object', additionalProperties: false, properties: { fsck: { type: 'boolean', default: true } } },
    response: { 202: TaskOutSchema },
    async handler(request, reply) {
      const { repo, snapshot: ref } = request.params as { repo: string; snapshot: string };
      const snapshot = await permittedSnapshot(context, request, repo, ref, 'restore.run');
      const body = (request.body ?? {}) as { fsck?: boolean };
      const task = await submit({ kind: 'test-restore', owner: actor(request), repository: repo, vm: snapshot.vm, spec: { repository: repositoryRef(knownRepository(context, repo)), snapshot: snapshot.id, fsck: body.fsck !== false } });
      await auditRequest(context, request, { action: 'restore.test', target: `/repositories/${repo}/snapshots/${snapshot.id}`, outcome: 'success', details: { vm: snapshot.vm, task: task.id } });
      return started(reply, task);
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/repositories/:repo/snapshots/:snapshot/instant-recovery',
    operationId: 'startInstantRecovery',
    summary: 'Serve a snapshot\'s disks over NBD until stopped (a long-running task; its report holds the NBD URIs and a QEMU command line)',
    description: '`listen` is HOST:PORT for the NBD listener (default 127.0.0.1:0, any free port). With `writable`, writes go to an overlay on the server and the repository is never modified. Stop it with DELETE /repositories/{repo}/instant-recovery/{id}.',
    tag: 'restore',
    access: { permission: 'restore.run', filtered: true },
    params: SnapshotParams,
    body: {
      type: 'object',
      additionalProperties: false,
      properties: { listen: { type: 'string', pattern: '^([A-Za-z0-9.-]+|\\[[0-9a-fA-F:]+\\]):\\d{1,5}$', default: '127.0.0.1:0' }, writable: { type: 'boolean', default: false } },
    },
    response: { 202: TaskOutSchema },
    async handler(request, reply) {
      const { repo, snapshot: ref } = request.params as { repo: string; snapshot: string };
      const snapshot = await permittedSnapshot(context, request, repo, ref, 'restore.run');
      if (snapshot.files !== undefined) throw new ApiError('E_VALIDATION', `snapshot ${snapshot.id.slice(0, 8)} holds files, not disks: there is nothing to serve over NBD (browse its files, or restore them to a folder)`);
      const body = (request.body ?? {}) as { listen?: string; writable?: boolean };
      const match = /^(.+):(\d+)$/.exec(body.listen ?? '127.0.0.1:0') as RegExpExecArray;
      const port = Number(match[2]);
      if (port > 65535) throw new ApiError('E_VALIDATION', `listen ${body.listen ?? ''}: the port is at most 65535`);
      let overlayDir: string | undefined;
      if (body.writable === true) {
        overlayDir = join(tmpdir(), 'coffer-instant-recovery', `${snapshot.id.slice(0, 16)}-${Date.now()}`);
        await makeFolders(overlayDir, 0o700);
      }
      const task = await submit({
        kind: 'instant-recovery', owner: actor(request), repository: repo, vm: snapshot.vm,
        spec: { repository: repositoryRef(knownRepository(context, repo)), snapshot: snapshot.id, listen: { host: (match[1] as string).replace(/^\[|\]$/g, ''), port }, ...(overlayDir === undefined ? {} : { overlayDir }) },
      });
      await auditRequest(context, request, { action: 'restore.instant-recovery', target: `/repositories/${repo}/snapshots/${snapshot.id}`, outcome: 'success', details: { vm: snapshot.vm, listen: body.listen ?? '127.0.0.1:0', writable: body.writable === true, task: task.id } });
      return started(reply, task);
    },
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/repositories/:repo/instant-recovery/:id',
    operationId: 'stopInstantRecovery',
    summary: 'Stop an instant recovery: cancels its task; the NBD listener and its connections close',
    tag: 'restore',
    access: { permission: 'restore.run', filtered: true },
    params: { type: 'object', required: ['repo', 'id'], properties: { repo: NameParam, id: { type: 'string', format: 'uuid' } } },
    response: { 200: TaskOutSchema },
    async handler(request) {
      const { repo, id } = request.params as { repo: string; id: string };
      const runner = runnerOf(context);
      const task = await runner.getTask(id).catch(() => undefined);
      if (task === undefined || task.kind !== 'instant-recovery' || task.repository !== repo) throw new ApiError('E_NOT_FOUND', `no instant recovery ${id} of repository ${repo}`);
      if (!canSee(request, 'restore.run', vmPaths(context, task.vm ?? '', repo))) throw new ApiError('E_FORBIDDEN', `you lack the permission restore.run on VM ${task.vm ?? '?'}`);
      const after = await runner.cancelTask(id, actor(request));
      await auditRequest(context, request, { action: 'restore.instant-recovery.stop', target: `/repositories/${repo}/instant-recovery/${id}`, outcome: 'success', details: { vm: task.vm } });
      return after;
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/repositories/:repo/verify',
    operationId: 'verifyRepository',
    summary: 'Verify a repository: every referenced chunk exists, and with readData (or a subset N/M or P%) reads back intact (a task)',
    tag: 'repositories',
    access: { permission: 'job.run', paths: (r) => [`/repositories/${repoParam(r)}`] },
    params: nameParams('repo'),
    body: { type: 'object', additionalProperties: false, properties: { readData: { type: 'boolean', default: false }, subset: { type: 'string', pattern: '^(\\d{1,6}/\\d{1,6}|\\d{1,3}(\\.\\d+)?%)$' } } },
    response: { 202: TaskOutSchema },
    async handler(request, reply) {
      const repo = knownRepository(context, repoParam(request));
      const body = (request.body ?? {}) as { readData?: boolean; subset?: string };
      if (body.subset !== undefined) parseVerificationSubset(body.subset, 'subset');
      const task = await submit({ kind: 'verify', owner: actor(request), repository: repo.name, spec: { repository: repositoryRef(repo), readData: body.readData === true, ...(body.subset === undefined ? {} : { subset: body.subset }) } });
      await auditRequest(context, request, { action: 'repository.verify', target: `/repositories/${repo.name}`, outcome: 'success', details: { readData: body.readData === true, subset: body.subset ?? null, task: task.id } });
      return started(reply, task);
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/repositories/:repo/sync',
    operationId: 'syncRepository',
    summary: 'Copy the snapshots another configured repository lacks (a task)',
    tag: 'repositories',
    access: { permission: 'job.run', paths: (r) => [`/repositories/${repoParam(r)}`] },
    params: nameParams('repo'),
    body: { type: 'object', additionalProperties: false, required: ['to'], properties: { to: NameParam, vm: NameParam, since: { type: 'string', format: 'date-time' } } },
    response: { 202: TaskOutSchema },
    async handler(request, reply) {
      const repo = knownRepository(context, repoParam(request));
      const body = request.body as { to: string; vm?: string; since?: string };
      const to = knownRepository(context, body.to);
      if (to.name === repo.name) throw new ApiError('E_VALIDATION', 'sync to the same repository: name another one');
      if (!canSee(request, 'job.run', [`/repositories/${to.name}`])) throw new ApiError('E_FORBIDDEN', `you lack the permission job.run on repository ${to.name}`);
      const task = await submit({ kind: 'sync', owner: actor(request), repository: repo.name, spec: { repository: repositoryRef(repo), to: repositoryRef(to), ...(body.vm === undefined ? {} : { vm: body.vm }), ...(body.since === undefined ? {} : { since: body.since }) } });
      await auditRequest(context, request, { action: 'repository.sync', target: `/repositories/${repo.name}`, outcome: 'success', details: { to: to.name, vm: body.vm ?? null, task: task.id } });
      return started(reply, task);
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/repositories/:repo/prune',
    operationId: 'pruneRepository',
    summary: 'Remove the data no snapshot references (a task; four-eyes: 202 with an approval request unless dryRun)',
    tag: 'repositories',
    access: { permission: 'snapshot.delete', paths: (r) => [`/repositories/${repoParam(r)}`] },
    params: nameParams('repo'),
    body: { type: 'object', additionalProperties: false, properties: { dryRun: { type: 'boolean', default: false }, waitMinutes: { type: 'number', minimum: 0, maximum: 1440, default: PRUNE_WAIT_MINUTES } } },
    response: { 202: TaskOrApproval },
    async handler(request, reply) {
      const repo = knownRepository(context, repoParam(request));
      const body = (request.body ?? {}) as { dryRun?: boolean; waitMinutes?: number };
      const spec = { repository: repositoryRef(repo), dryRun: body.dryRun === true, waitMs: (body.waitMinutes ?? PRUNE_WAIT_MINUTES) * 60_000 };
      return destructive(request, reply, 'repository.prune', repo.name, spec, `prune repository ${repo.name}`, () => submit({ kind: 'prune', owner: actor(request), repository: repo.name, spec }));
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/repositories/:repo/forget',
    operationId: 'forgetByPolicy',
    summary: 'Remove the snapshots a retention policy does not keep, then prune if asked (a task; four-eyes: 202 with an approval request unless dryRun)',
    tag: 'repositories',
    access: { permission: 'snapshot.delete', paths: (r) => [`/repositories/${repoParam(r)}`] },
    params: nameParams('repo'),
    body: { type: 'object', additionalProperties: false, required: ['policy'], properties: { policy: PolicySchema, vm: NameParam, dryRun: { type: 'boolean', default: false }, prune: { type: 'boolean', default: false } } },
    response: { 202: TaskOrApproval },
    async handler(request, reply) {
      const repo = knownRepository(context, repoParam(request));
      const body = request.body as { policy: Omit<RetentionPolicy, 'within'> & { within?: string }; vm?: string; dryRun?: boolean; prune?: boolean };
      const { within, ...counts } = body.policy;
      const policy: RetentionPolicy = { ...counts, ...(within === undefined ? {} : { within: parseRetentionDuration(within) }) };
      if (Object.keys(policy).length === 0) throw new ApiError('E_VALIDATION', 'an empty policy would remove every snapshot: say what to keep');
      const spec = { repository: repositoryRef(repo), policy, ...(body.vm === undefined ? {} : { vm: body.vm }), dryRun: body.dryRun === true, prune: body.prune === true };
      return destructive(request, reply, 'repository.forget', repo.name, spec, `forget by policy in repository ${repo.name}${body.vm === undefined ? '' : ` (VM ${body.vm})`}`, () => submit({ kind: 'forget', owner: actor(request), repository: repo.name, ...(body.vm === undefined ? {} : { vm: body.vm }), spec }));
    },
  });

  /** Runs a destructive operation now, or (four eyes, not a dry run) asks for a second administrator. */
  async function destructive(request: FastifyRequest, reply: FastifyReply, operation: string, repo: string, spec: { dryRun: boolean }, summary: string, run: () => Promise<TaskInfo>): Promise<unknown> {
    if (context.config.config.security?.['four-eyes'] === true && !spec.dryRun) {
      const approval = await context.approvals.request(operation, { repository: repo, owner: actor(request), spec }, summary, actor(request));
      await auditRequest(context, request, { action: operation, target: `/repositories/${repo}`, outcome: 'pending', details: { approval: approval.id } });
      return reply.code(202).send({ approval: approval.id, status: approval.status });
    }
    const task = await run();
    await auditRequest(context, request, { action: operation, target: `/repositories/${repo}`, outcome: 'success', details: { dryRun: spec.dryRun, task: task.id } });
    return started(reply, task);
  }
}
