/** /api/v1/approvals: four-eyes requests, listed and decided by a second administrator. */
import type { FastifyInstance } from 'fastify';
import { userOfActor } from '../../auth/index.js';
import type { ApprovalRequest } from '../approvals.js';
import { PageQueryProperties, pageOf } from '../paging.js';
import { defineRoute } from '../route.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { isoTime } from './schemas.js';

const ApprovalSchema = {
  type: 'object',
  required: ['id', 'operation', 'summary', 'requestedBy', 'requestedAt', 'status'],
  properties: {
    id: { type: 'string' },
    operation: { type: 'string' },
    arguments: { type: 'object', additionalProperties: true },
    summary: { type: 'string' },
    requestedBy: { type: 'string', description: 'the actor who asked, as the audit log names it' },
    requestedByUser: { type: ['string', 'null'], description: 'the user behind requestedBy (through a session or a token); that user cannot decide it' },
    requestedAt: { type: 'string', format: 'date-time' },
    status: { type: 'string', enum: ['pending', 'approved', 'rejected', 'failed'] },
    decidedBy: { type: ['string', 'null'] },
    decidedAt: { type: ['string', 'null'], format: 'date-time' },
    result: { type: ['string', 'null'] },
  },
} as const;

const out = (a: ApprovalRequest) => ({ ...a, requestedByUser: userOfActor(a.requestedBy) ?? null, requestedAt: isoTime(a.requestedAt), decidedAt: isoTime(a.decidedAt) });

export function approvalRoutes(app: FastifyInstance, context: ServiceContext): void {
  defineRoute(app, {
    method: 'GET',
    url: '/approvals',
    operationId: 'listApprovals',
    summary: 'Four-eyes requests, newest first',
    tag: 'approvals',
    access: { permission: 'approvals.decide' },
    querystring: { type: 'object', additionalProperties: false, properties: { ...PageQueryProperties, status: { type: 'string', enum: ['pending', 'approved', 'rejected', 'failed'] } } },
    response: { 200: pageOf(ApprovalSchema) },
    async handler(request) {
      const q = request.query as { limit: number; offset: number; status?: string };
      const page = await context.approvals.list(q);
      return { items: page.items.map(out), total: page.total, limit: q.limit, offset: q.offset };
    },
  });

  for (const [verb, approve] of [['approve', true], ['reject', false]] as const) {
    defineRoute(app, {
      method: 'POST',
      url: `/approvals/:id/${verb}`,
      operationId: `${verb}Request`,
      summary: approve ? 'Approve a request (not your own): the operation runs now' : 'Reject a request',
      tag: 'approvals',
      access: { permission: 'approvals.decide' },
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } },
      response: { 200: ApprovalSchema },
      async handler(request) {
        const { id } = request.params as { id: string };
        const decided = await context.approvals.decide(id, request.principal?.actor ?? 'anonymous', approve);
        await auditRequest(context, request, { action: `approval.${verb}`, target: `/approvals/${id}`, outcome: decided.status === 'failed' ? 'failure' : 'success', details: { operation: decided.operation, summary: decided.summary, result: decided.result } });
        return out(decided);
      },
    });
  }
}
