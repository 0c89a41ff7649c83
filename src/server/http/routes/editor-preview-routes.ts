/**
 * Read-only previews for the console's jobs editor, computed by the same code that acts later:
 *
 * - `POST /jobs/selection-preview {select}`: the VMs a job's selection would match now
 *   (inventory/selectVms, as the scheduler selects them);
 * - `POST /repositories/{repo}/retention-preview {retention, vm?}`: for a job's retention
 *   settings (`keep-last`, `keep-daily`… as in the configuration), which existing snapshots
 *   each VM would keep, with every reason, and which it would remove (repo/applyRetention, as
 *   the forget task applies it; protected snapshots are kept and count for no rule).
 *
 * Nothing is changed, so `inventory.read` is enough; a caller sees only the VMs its grants
 * cover.
 */
import type { FastifyInstance } from 'fastify';
import { applyRetention, parseRetentionDuration, type RetentionPolicy } from '../../../repo/index.js';
import { RetentionSchema, SelectorSchema, type JobConfig } from '../../config/index.js';
import { selectVms } from '../../inventory/index.js';
import { ApiError } from '../api-error.js';
import { defineRoute } from '../route.js';
import { canSee } from '../security-hooks.js';
import type { ServiceContext } from '../service-context.js';
import { nameParams } from './schemas.js';
import { knownRepository } from './snapshot-access.js';

type Retention = NonNullable<JobConfig['retention']>;

/** A job's retention settings as the policy applyRetention takes. */
export function retentionPolicy(retention: Retention): RetentionPolicy {
  const policy: RetentionPolicy = {
    ...(retention['keep-last'] === undefined ? {} : { last: retention['keep-last'] }),
    ...(retention['keep-hourly'] === undefined ? {} : { hourly: retention['keep-hourly'] }),
    ...(retention['keep-daily'] === undefined ? {} : { daily: retention['keep-daily'] }),
    ...(retention['keep-weekly'] === undefined ? {} : { weekly: retention['keep-weekly'] }),
    ...(retention['keep-monthly'] === undefined ? {} : { monthly: retention['keep-monthly'] }),
    ...(retention['keep-yearly'] === undefined ? {} : { yearly: retention['keep-yearly'] }),
    ...(retention['keep-within'] === undefined ? {} : { within: parseRetentionDuration(retention['keep-within']) }),
    // Each listed tag keeps the snapshots that carry it.
    ...(retention['keep-tags'] === undefined ? {} : { tags: retention['keep-tags'].map((t) => [t]) }),
  };
  if (Object.keys(policy).length === 0) throw new ApiError('E_VALIDATION', 'a retention that keeps nothing would remove every snapshot: set at least one keep- rule');
  return policy;
}

const DecisionSchema = {
  type: 'object',
  required: ['id', 'time', 'keep', 'reasons'],
  properties: { id: { type: 'string' }, time: { type: 'string', format: 'date-time' }, keep: { type: 'boolean' }, reasons: { type: 'array', items: { type: 'string' } } },
} as const;

export function editorPreviewRoutes(app: FastifyInstance, context: ServiceContext): void {
  const vms = () => context.config.config.vms ?? [];
  const hostOf = (vm: string) => vms().find((v) => v.name === vm)?.host;

  defineRoute(app, {
    method: 'POST',
    url: '/jobs/selection-preview',
    operationId: 'previewSelection',
    summary: 'The VMs a job selection would match now (nothing is changed)',
    tag: 'jobs',
    access: { permission: 'inventory.read', filtered: true },
    body: { type: 'object', additionalProperties: false, required: ['select'], properties: { select: SelectorSchema } },
    response: { 200: { type: 'object', required: ['vms'], properties: { vms: { type: 'array', items: { type: 'object', required: ['name', 'host'], properties: { name: { type: 'string' }, host: { type: 'string' } } } } } } },
    async handler(request) {
      const { select } = request.body as { select: JobConfig['select'] };
      const matched = selectVms(select, vms()).filter((v) => canSee(request, 'inventory.read', [`/vms/${v.name}`, `/hosts/${v.host}`]));
      return { vms: matched.map((v) => ({ name: v.name, host: v.host })) };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/repositories/:repo/retention-preview',
    operationId: 'previewRetention',
    summary: 'Which existing snapshots a job\'s retention settings would keep, and why, and which they would remove (nothing is changed)',
    tag: 'repositories',
    access: { permission: 'inventory.read', filtered: true },
    params: nameParams('repo'),
    body: { type: 'object', additionalProperties: false, required: ['retention'], properties: { retention: RetentionSchema, vm: { type: 'string', maxLength: 100 } } },
    response: {
      200: {
        type: 'object',
        required: ['vms'],
        properties: { vms: { type: 'array', items: { type: 'object', required: ['vm', 'keep', 'remove', 'snapshots'], properties: { vm: { type: 'string' }, files: { type: 'object', required: ['paths'], properties: { paths: { type: 'array', items: { type: 'string' } }, stdinName: { type: 'string' } }, description: 'present for a group of file snapshots (one per set of paths or stream, apart from the VM\'s disk snapshots, as forget groups them)' }, keep: { type: 'integer' }, remove: { type: 'integer' }, snapshots: { type: 'array', items: DecisionSchema, description: 'newest first' } } } } },
      },
    },
    async handler(request) {
      const repo = knownRepository(context, (request.params as { repo: string }).repo).name;
      const body = request.body as { retention: Retention; vm?: string };
      let policy: RetentionPolicy;
      try {
        policy = retentionPolicy(body.retention);
      } catch (error) {
        if (error instanceof ApiError) throw error;
        throw new ApiError('E_VALIDATION', error instanceof Error ? error.message : String(error));
      }
      const visible = (vm: string) => {
        const host = hostOf(vm);
        return canSee(request, 'inventory.read', [`/repositories/${repo}`, `/vms/${vm}`, ...(host === undefined ? [] : [`/hosts/${host}`])]);
      };
      const [snapshots, protectedIds] = await Promise.all([context.catalog.snapshotSummaries(repo, body.vm === undefined ? {} : { vm: body.vm }), context.catalog.protectedIds(repo)]);
      const candidates = snapshots.filter((s) => visible(s.vm)).map((s) => ({ id: s.id, vm: s.vm, time: s.time, tags: s.tags, protected: protectedIds.has(s.id), ...(s.files === undefined ? {} : { files: s.files }) }));
      const groups = applyRetention(candidates, policy);
      return {
        vms: groups.map((g) => ({
          vm: g.vm,
          ...(g.files === undefined ? {} : { files: g.files }),
          keep: g.decisions.filter((d) => d.keep).length,
          remove: g.decisions.filter((d) => !d.keep).length,
          snapshots: [...g.decisions].reverse().map((d) => ({ id: d.snapshot.id, time: d.snapshot.time, keep: d.keep, reasons: d.reasons })),
        })),
      };
    },
  });
}
