/**
 * PUT /api/v1/repositories/{repo}/snapshots/{snapshot}/tags: changes a snapshot's tags after
 * the fact, as `coffer tag` does (a tag record, repo/snapshot-tags.ts; docs/retention.md), so
 * an administrator can put a `legal-hold` tag that `forget --keep-tag` keeps, or lift it.
 *
 * The body is the whole new list, as `PUT /users/{name}/grants` takes grants. The server
 * compares it with the tags it reads from the repository and applies the difference (tags
 * dropped are removed, tags new are added): a tag someone else changed meanwhile is neither
 * undone nor removed unseen. Permission `snapshot.delete` on the snapshot's repository, VM or
 * host: removing a tag retention keeps lets a forget remove the snapshot. With
 * `security.four-eyes`, a change that removes any tag waits for a second administrator (202
 * and an approval request; approved, the same additions and removals are applied to the tags
 * as they are then); one that only adds applies at once. Every change is audit-logged with
 * the tags before and after. The snapshot index shows the new tags when the answer comes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkTags, type Snapshot } from '../../../repo/index.js';
import { ApiError } from '../api-error.js';
import { defineRoute } from '../route.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { permittedSnapshot, SnapshotParams } from './snapshot-access.js';

const TagList = { type: 'array', items: { type: 'string' }, maxItems: 1000 } as const;

const TagsOutSchema = {
  type: 'object',
  required: ['id', 'vm', 'tags', 'previousTags', 'changed'],
  properties: {
    id: { type: 'string' },
    vm: { type: 'string' },
    tags: { ...TagList, description: 'the snapshot\'s tags now' },
    previousTags: { ...TagList, description: 'its tags before this change' },
    changed: { type: 'boolean', description: 'false when the tags already were so (nothing written)' },
  },
} as const;

const ApprovalOutSchema = {
  type: 'object',
  required: ['approval', 'status'],
  properties: { approval: { type: 'string', description: 'the approval request a second administrator decides' }, status: { type: 'string' } },
} as const;

/** The operation an approval runs for a tag change that removes tags. */
const OPERATION = 'snapshot.tags';

const listed = (tags: readonly string[]) => (tags.length === 0 ? '(none)' : tags.join(', '));

export function snapshotTagRoutes(app: FastifyInstance, context: ServiceContext): void {
  const actor = (r: FastifyRequest) => r.principal?.actor ?? 'anonymous';
  const target = (repo: string, id: string) => `/repositories/${repo}/snapshots/${id}`;

  context.approvals.register(OPERATION, async (args, approver) => {
    const repo = String(args.repository);
    const id = String(args.snapshot);
    const found = await context.catalog.findSnapshot(repo, id);
    if (found === undefined || found === 'ambiguous') throw new ApiError('E_NOT_FOUND', `snapshot ${id.slice(0, 8)} is no longer in repository ${repo}`);
    const outcome = await context.catalog.changeTags(repo, found, { add: strings(args.add), remove: strings(args.remove) }, new Date());
    await context.audit.record({ actor: approver, address: '-', action: OPERATION, target: target(repo, found.id), outcome: 'success', details: { approved: true, vm: found.vm, before: outcome.previous, after: outcome.tags, changed: outcome.record !== null } });
    return `tags of snapshot ${found.id.slice(0, 8)}: ${listed(outcome.tags)} (were ${listed(outcome.previous)})`;
  });

  defineRoute(app, {
    method: 'PUT',
    url: '/repositories/:repo/snapshots/:snapshot/tags',
    operationId: 'setSnapshotTags',
    summary: 'Replace a snapshot\'s tags (a tag record, as `coffer tag`; four-eyes: a change that removes a tag answers 202 with an approval request)',
    description:
      '`tags` is the whole new list. The server applies the difference from the tags it reads (dropped ones removed, new ones added), so a change someone made meanwhile to other tags stays. A tag is 1 to 200 characters, no control character (400 `E_USAGE`). With `security.four-eyes`, a change that removes any tag (one `forget --keep-tag` may keep) waits for a second administrator: 202 `{approval}`, and when approved the same additions and removals apply; a change that only adds applies at once. Lists and the `tag` filter show the new tags as soon as this answers.',
    tag: 'repositories',
    access: { permission: 'snapshot.delete', filtered: true },
    params: SnapshotParams,
    body: { type: 'object', additionalProperties: false, required: ['tags'], properties: { tags: TagList } },
    response: { 200: TagsOutSchema, 202: ApprovalOutSchema },
    async handler(request, reply) {
      const { repo, snapshot: reference } = request.params as { repo: string; snapshot: string };
      const wanted = [...new Set((request.body as { tags: string[] }).tags)];
      checkTags(wanted);
      const snapshot = await permittedSnapshot(context, request, repo, reference, 'snapshot.delete');
      const add = wanted.filter((tag) => !snapshot.tags.includes(tag));
      const remove = snapshot.tags.filter((tag) => !wanted.includes(tag));
      if (remove.length > 0 && context.config.config.security?.['four-eyes'] === true) {
        const summary = `change the tags of snapshot ${snapshot.id.slice(0, 8)} (VM ${snapshot.vm}) in repository ${repo}: ${listed(snapshot.tags)} → ${listed(wanted)} (removes ${remove.join(', ')})`;
        const approval = await context.approvals.request(OPERATION, { repository: repo, snapshot: snapshot.id, vm: snapshot.vm, before: snapshot.tags, after: wanted, add, remove }, summary, actor(request));
        await auditRequest(context, request, { action: OPERATION, target: target(repo, snapshot.id), outcome: 'pending', details: { vm: snapshot.vm, before: snapshot.tags, after: wanted, approval: approval.id } });
        return reply.code(202).send({ approval: approval.id, status: approval.status });
      }
      return applied(request, repo, snapshot, add, remove);
    },
  });

  async function applied(request: FastifyRequest, repo: string, snapshot: Snapshot, add: string[], remove: string[]) {
    const outcome = await context.catalog.changeTags(repo, snapshot, { add, remove }, new Date());
    const changed = outcome.record !== null;
    await auditRequest(context, request, { action: OPERATION, target: target(repo, snapshot.id), outcome: 'success', details: { vm: snapshot.vm, before: outcome.previous, after: outcome.tags, changed } });
    return { id: snapshot.id, vm: snapshot.vm, tags: outcome.tags, previousTags: outcome.previous, changed };
  }
}

/** A list of strings stored in an approval's arguments (anything else: none). */
function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
