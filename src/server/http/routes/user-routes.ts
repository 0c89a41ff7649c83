/**
 * /api/v1/users and their grants: list, create (with a password the user must change at first
 * login), show, reset a password, replace the grants, delete. Deleting is destructive: with
 * `security.four-eyes` it waits for a second administrator (approvals.ts). The last
 * administrator on `/` can be neither deleted nor stripped of that grant: the user store
 * refuses it (E_LAST_ADMIN, 409), checked in the same transaction as the change, so also when
 * an approved deletion runs later or two administrators demote each other at once.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MIN_PASSWORD_LENGTH, type Grant, type User } from '../../auth/index.js';
import { ApiError } from '../api-error.js';
import { PageQueryProperties, pageOf } from '../paging.js';
import { defineRoute } from '../route.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { GrantSchema, isoTime, nameParams, UserSchema } from './schemas.js';

const userOut = (u: User) => ({ name: u.name, mustChangePassword: u.mustChangePassword, createdAt: isoTime(u.createdAt), grants: u.grants });
const PasswordSchema = { type: 'string', minLength: MIN_PASSWORD_LENGTH, maxLength: 1000 } as const;

export function userRoutes(app: FastifyInstance, context: ServiceContext): void {
  const find = async (request: FastifyRequest): Promise<User> => {
    const { name } = request.params as { name: string };
    const user = await context.users.byName(name);
    if (user === undefined) throw new ApiError('E_NOT_FOUND', `no user named ${name}`);
    return user;
  };

  context.approvals.register('user.delete', async (args, approver) => {
    const user = await context.users.byName(String(args.name));
    if (user === undefined) throw new ApiError('E_NOT_FOUND', `no user named ${String(args.name)}`);
    await context.users.delete(user.id);
    await context.audit.record({ actor: approver, address: '-', action: 'user.delete', target: `/users/${user.name}`, outcome: 'success', details: { approved: true } });
    return `user ${user.name} deleted`;
  });

  defineRoute(app, {
    method: 'GET',
    url: '/users',
    operationId: 'listUsers',
    summary: 'Users, by name',
    tag: 'users',
    access: { permission: 'users.read' },
    querystring: { type: 'object', additionalProperties: false, properties: { ...PageQueryProperties, search: { type: 'string', maxLength: 100, description: 'names containing this' } } },
    response: { 200: pageOf(UserSchema) },
    async handler(request) {
      const q = request.query as { limit: number; offset: number; search?: string };
      const page = await context.users.list(q);
      return { items: page.items.map(userOut), total: page.total, limit: q.limit, offset: q.offset };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/users',
    operationId: 'createUser',
    summary: 'Create a user (who must change the password at first login unless told otherwise)',
    tag: 'users',
    access: { permission: 'users.write' },
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'password'],
      properties: {
        name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$' },
        password: PasswordSchema,
        grants: { type: 'array', items: GrantSchema, default: [] },
        mustChangePassword: { type: 'boolean', default: true },
      },
    },
    response: { 201: UserSchema },
    async handler(request, reply) {
      const body = request.body as { name: string; password: string; grants: Grant[]; mustChangePassword: boolean };
      const user = await context.users.create(body.name, body.password, { grants: body.grants, mustChangePassword: body.mustChangePassword });
      await auditRequest(context, request, { action: 'user.create', target: `/users/${user.name}`, outcome: 'success', details: { grants: body.grants } });
      return reply.code(201).send(userOut(user));
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/users/:name',
    operationId: 'getUser',
    summary: 'One user',
    tag: 'users',
    access: { permission: 'users.read' },
    params: nameParams('name'),
    response: { 200: UserSchema },
    async handler(request) {
      return userOut(await find(request));
    },
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/users/:name',
    operationId: 'deleteUser',
    summary: 'Delete a user with its sessions and tokens (four-eyes: 202 and an approval request)',
    tag: 'users',
    access: { permission: 'users.write' },
    params: nameParams('name'),
    response: {
      204: null,
      202: { type: 'object', required: ['approval'], properties: { approval: { type: 'string' }, status: { type: 'string' } } },
    },
    async handler(request, reply) {
      const user = await find(request);
      const actor = request.principal?.actor ?? 'anonymous';
      if (user.id === request.principal?.userId) throw new ApiError('E_CONFLICT', 'you cannot delete yourself');
      if (context.config.config.security?.['four-eyes'] === true) {
        const approval = await context.approvals.request('user.delete', { name: user.name }, `delete user ${user.name}`, actor);
        await auditRequest(context, request, { action: 'user.delete', target: `/users/${user.name}`, outcome: 'pending', details: { approval: approval.id } });
        return reply.code(202).send({ approval: approval.id, status: approval.status });
      }
      await context.users.delete(user.id);
      await auditRequest(context, request, { action: 'user.delete', target: `/users/${user.name}`, outcome: 'success' });
      return reply.code(204).send();
    },
  });

  defineRoute(app, {
    method: 'PUT',
    url: '/users/:name/password',
    operationId: 'resetPassword',
    summary: 'Set a user\'s password (the user must change it at next login); ends the user\'s sessions',
    tag: 'users',
    access: { permission: 'users.write' },
    params: nameParams('name'),
    body: { type: 'object', additionalProperties: false, required: ['password'], properties: { password: PasswordSchema } },
    response: { 204: null },
    async handler(request, reply) {
      const user = await find(request);
      await context.users.setPassword(user.id, (request.body as { password: string }).password, { mustChange: true });
      await context.sessions.deleteAllOf(user.id);
      await auditRequest(context, request, { action: 'user.password-reset', target: `/users/${user.name}`, outcome: 'success' });
      return reply.code(204).send();
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/users/:name/grants',
    operationId: 'getGrants',
    summary: 'A user\'s grants (roles on paths)',
    tag: 'grants',
    access: { permission: 'users.read' },
    params: nameParams('name'),
    response: { 200: { type: 'object', required: ['grants'], properties: { grants: { type: 'array', items: GrantSchema } } } },
    async handler(request) {
      return { grants: (await find(request)).grants };
    },
  });

  defineRoute(app, {
    method: 'PUT',
    url: '/users/:name/grants',
    operationId: 'setGrants',
    summary: 'Replace a user\'s grants (the user\'s tokens keep only what the new grants cover)',
    tag: 'grants',
    access: { permission: 'users.write' },
    params: nameParams('name'),
    body: { type: 'object', additionalProperties: false, required: ['grants'], properties: { grants: { type: 'array', items: GrantSchema, maxItems: 1000 } } },
    response: { 200: { type: 'object', required: ['grants'], properties: { grants: { type: 'array', items: GrantSchema } } } },
    async handler(request) {
      const user = await find(request);
      const { grants } = request.body as { grants: Grant[] };
      await context.users.setGrants(user.id, grants);
      await auditRequest(context, request, { action: 'user.grants', target: `/users/${user.name}`, outcome: 'success', details: { before: user.grants, after: grants } });
      return { grants: await context.users.grantsOf(user.id) };
    },
  });
}
