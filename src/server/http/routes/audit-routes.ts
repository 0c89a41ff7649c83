/** /api/v1/audit: the audit log, newest first, filtered and paged by cursor. */
import type { FastifyInstance } from 'fastify';
import { defineRoute } from '../route.js';
import type { ServiceContext } from '../service-context.js';
import { isoTime } from './schemas.js';

const EntrySchema = {
  type: 'object',
  required: ['id', 'at', 'actor', 'address', 'action', 'target', 'outcome', 'details'],
  properties: {
    id: { type: 'string' },
    at: { type: 'string', format: 'date-time' },
    actor: { type: 'string' },
    address: { type: 'string' },
    action: { type: 'string' },
    target: { type: 'string' },
    outcome: { type: 'string', enum: ['success', 'failure', 'denied', 'pending'] },
    details: { type: 'object', additionalProperties: true },
  },
} as const;

export function auditRoutes(app: FastifyInstance, context: ServiceContext): void {
  defineRoute(app, {
    method: 'GET',
    url: '/audit',
    operationId: 'listAudit',
    summary: 'The audit log, newest first; page on with cursor=next',
    tag: 'audit',
    access: { permission: 'audit.read' },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
        cursor: { type: 'string', pattern: '^[0-9a-f]{26}$' },
        actor: { type: 'string', description: 'user:NAME, token:ID (user NAME), anonymous or system' },
        action: { type: 'string', description: 'e.g. auth.login, or config.* for a family' },
        target: { type: 'string' },
        outcome: { type: 'string', enum: ['success', 'failure', 'denied', 'pending'] },
        since: { type: 'string', format: 'date-time' },
        until: { type: 'string', format: 'date-time' },
      },
    },
    response: {
      200: {
        type: 'object',
        required: ['items', 'total', 'limit', 'next'],
        properties: { items: { type: 'array', items: EntrySchema }, total: { type: 'integer' }, limit: { type: 'integer' }, next: { type: ['string', 'null'] } },
      },
    },
    async handler(request) {
      const q = request.query as { limit: number; cursor?: string; actor?: string; action?: string; target?: string; outcome?: string; since?: string; until?: string };
      const page = await context.audit.list({
        limit: q.limit,
        ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
        ...(q.actor === undefined ? {} : { actor: q.actor }),
        ...(q.action === undefined ? {} : { action: q.action }),
        ...(q.target === undefined ? {} : { target: q.target }),
        ...(q.outcome === undefined ? {} : { outcome: q.outcome }),
        ...(q.since === undefined ? {} : { since: Date.parse(q.since) }),
        ...(q.until === undefined ? {} : { until: Date.parse(q.until) }),
      });
      return { items: page.items.map((e) => ({ ...e, at: isoTime(e.at) })), total: page.total, limit: q.limit, next: page.next };
    },
  });
}
