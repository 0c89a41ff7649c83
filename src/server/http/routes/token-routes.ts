/**
 * /api/v1/tokens: API tokens for scripts. Anyone logged in manages their own; `users.read`
 * lists everyone's and `users.write` revokes anyone's. A token's grants must lie within its
 * creator's (a token cannot widen rights; a token can make a narrower token). The secret is in
 * the creation answer only.
 */
import type { FastifyInstance } from 'fastify';
import { allows, grantWithin, type ApiToken, type Grant } from '../../auth/index.js';
import { ApiError } from '../api-error.js';
import { PageQueryProperties, pageOf } from '../paging.js';
import { defineRoute } from '../route.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { GrantSchema, isoTime } from './schemas.js';

const TokenSchema = {
  type: 'object',
  required: ['id', 'name', 'user', 'createdAt', 'expiresAt', 'lastUsedAt', 'grants'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    user: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: ['string', 'null'], format: 'date-time' },
    lastUsedAt: { type: ['string', 'null'], format: 'date-time' },
    grants: { type: 'array', items: GrantSchema },
  },
} as const;

export function tokenRoutes(app: FastifyInstance, context: ServiceContext): void {
  const names = new Map<string, string>();
  const out = async (t: ApiToken) => {
    let user = names.get(t.userId);
    if (user === undefined) {
      user = (await context.users.byId(t.userId))?.name ?? '?';
      names.set(t.userId, user);
    }
    return { id: t.id, name: t.name, user, createdAt: isoTime(t.createdAt), expiresAt: isoTime(t.expiresAt), lastUsedAt: isoTime(t.lastUsedAt), grants: t.grants };
  };

  defineRoute(app, {
    method: 'GET',
    url: '/tokens',
    operationId: 'listTokens',
    summary: 'My API tokens (all users\' with all=true and users.read)',
    tag: 'tokens',
    access: { authenticated: true },
    querystring: { type: 'object', additionalProperties: false, properties: { ...PageQueryProperties, all: { type: 'boolean', default: false } } },
    response: { 200: pageOf(TokenSchema) },
    async handler(request) {
      const q = request.query as { limit: number; offset: number; all: boolean };
      const p = request.principal;
      if (p === undefined) throw new ApiError('E_UNAUTHENTICATED', 'not logged in');
      if (q.all && !allows(p.grants, 'users.read', ['/'])) throw new ApiError('E_FORBIDDEN', 'listing every user\'s tokens needs users.read on /');
      const page = await context.tokens.list({ ...(q.all ? {} : { userId: p.userId }), limit: q.limit, offset: q.offset });
      return { items: await Promise.all(page.items.map(out)), total: page.total, limit: q.limit, offset: q.offset };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/tokens',
    operationId: 'createToken',
    summary: 'Create an API token; the secret is shown in this answer only',
    tag: 'tokens',
    access: { authenticated: true },
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 100 },
        grants: { type: 'array', items: GrantSchema, maxItems: 100, description: 'default: all of the creator\'s grants; each must lie within them' },
        expiresAt: { type: 'string', format: 'date-time', description: 'default: never' },
      },
    },
    response: { 201: { type: 'object', required: ['token', 'secret'], properties: { token: TokenSchema, secret: { type: 'string', description: 'Authorization: Bearer <secret>' } } } },
    async handler(request, reply) {
      const p = request.principal;
      if (p === undefined) throw new ApiError('E_UNAUTHENTICATED', 'not logged in');
      const body = request.body as { name: string; grants?: Grant[]; expiresAt?: string };
      const grants = body.grants ?? p.grants;
      const outside = grants.filter((g) => !grantWithin(g, p.grants));
      if (outside.length > 0) throw new ApiError('E_FORBIDDEN', `a token cannot hold more than its creator: ${outside.map((g) => `${g.role} on ${g.path}`).join(', ')}`);
      const expiresAt = body.expiresAt === undefined ? null : Date.parse(body.expiresAt);
      if (expiresAt !== null && !(expiresAt > context.now())) throw new ApiError('E_VALIDATION', 'expiresAt must be in the future');
      const { token, secret } = await context.tokens.create(p.userId, body.name, { grants, expiresAt });
      await auditRequest(context, request, { action: 'token.create', target: `/tokens/${token.id}`, outcome: 'success', details: { name: body.name, grants, expiresAt: isoTime(expiresAt) } });
      return reply.code(201).send({ token: await out(token), secret });
    },
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/tokens/:id',
    operationId: 'deleteToken',
    summary: 'Revoke an API token: a session its user\'s, a token itself, users.write any',
    tag: 'tokens',
    access: { authenticated: true },
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'uuid' } } },
    response: { 204: null },
    async handler(request, reply) {
      const p = request.principal;
      if (p === undefined) throw new ApiError('E_UNAUTHENTICATED', 'not logged in');
      const { id } = request.params as { id: string };
      const token = await context.tokens.byId(id);
      if (token === undefined) throw new ApiError('E_NOT_FOUND', `no token ${id}`);
      // A session revokes its user's tokens; a token revokes only itself (a restore-only token
      // must not delete its owner's other tokens); anything else needs users.write on /.
      const own = p.kind === 'session' ? token.userId === p.userId : token.id === p.tokenId;
      if (!own && !allows(p.grants, 'users.write', ['/'])) throw new ApiError('E_FORBIDDEN', 'revoking this token needs users.write on / (a token may revoke only itself)');
      await context.tokens.delete(id);
      await auditRequest(context, request, { action: 'token.delete', target: `/tokens/${id}`, outcome: 'success', details: { name: token.name } });
      return reply.code(204).send();
    },
  });
}
