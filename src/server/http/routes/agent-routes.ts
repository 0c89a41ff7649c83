/**
 * /api/v1/agents: the machines running `coffer agent` (docs/agent.md). Listing shows each
 * agent token's name with whether its agent is online, when it was last heard from, what it
 * registered (hostname, OS, Coffer version) and the task it runs. Creating one makes its
 * token (append-only, bound to the name), shown once; deleting revokes it: refused from the
 * next request on, its running task failed (E_AGENT_REFUSED), its repository keys removed. Audit-logged.
 */
import type { FastifyInstance } from 'fastify';
import { CofferError } from '../../../errors/index.js';
import { ApiError } from '../api-error.js';
import { defineRoute } from '../route.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { nameParams } from './schemas.js';

const time = { type: 'string', format: 'date-time' } as const;
const AgentSchema = {
  type: 'object',
  required: ['name', 'online', 'lastSeen', 'hello', 'task', 'created', 'expires'],
  properties: {
    name: { type: 'string' },
    online: { type: 'boolean', description: 'a poll is open, or one was answered within agents.offline-after' },
    lastSeen: { type: ['string', 'null'], format: 'date-time', description: 'null: not heard from since the server started' },
    hello: {
      type: ['object', 'null'],
      required: ['hostname', 'os', 'version', 'at'],
      properties: { hostname: { type: 'string' }, os: { type: 'string' }, version: { type: 'string' }, at: time },
    },
    task: { type: ['string', 'null'], description: 'the task it runs now' },
    created: time,
    expires: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

export function agentRoutes(app: FastifyInstance, context: ServiceContext): void {
  const directory = () => {
    if (context.agents === undefined) throw new ApiError('E_UNAVAILABLE', 'this server manages no agents');
    return context.agents;
  };

  defineRoute(app, {
    method: 'GET',
    url: '/agents',
    operationId: 'listAgents',
    summary: 'The agents: online or not, last heard from, what they registered, the task each runs',
    tag: 'agents',
    access: { permission: 'inventory.read' },
    response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: AgentSchema } } } },
    async handler() {
      return { items: await directory().list() };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/agents',
    operationId: 'createAgent',
    summary: 'Make an agent\'s token (append-only, bound to its name); the secret is in this answer only',
    tag: 'agents',
    access: { permission: 'config.write' },
    body: {
      type: 'object', additionalProperties: false, required: ['name'],
      properties: { name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }, expiresAt: time },
    },
    response: { 201: { type: 'object', required: ['name', 'token'], properties: { name: { type: 'string' }, token: { type: 'string', description: 'cfr_…: give it to the agent (coffer agent --token-file)' } } } },
    async handler(request, reply) {
      const body = request.body as { name: string; expiresAt?: string };
      const expires = body.expiresAt === undefined ? null : new Date(body.expiresAt);
      if (expires !== null && expires.getTime() <= context.now()) throw new ApiError('E_VALIDATION', 'expiresAt is in the past');
      let token: string;
      try {
        token = await directory().create(body.name, expires);
      } catch (error) {
        if (error instanceof CofferError && error.code === 'E_USAGE') throw new ApiError('E_CONFLICT', error.message);
        throw error;
      }
      await auditRequest(context, request, { action: 'agent.create', target: `/agents/${body.name}`, outcome: 'success', details: { expiresAt: expires?.toISOString() ?? null } });
      return reply.code(201).send({ name: body.name, token });
    },
  });

  defineRoute(app, {
    method: 'DELETE',
    url: '/agents/:name',
    operationId: 'revokeAgent',
    summary: 'Revoke an agent: its token is refused from now on, its running task fails, its repository keys are removed',
    tag: 'agents',
    access: { permission: 'config.write' },
    params: nameParams('name'),
    response: { 200: { type: 'object', required: ['name', 'problems'], properties: { name: { type: 'string' }, problems: { type: 'array', items: { type: 'string' }, description: 'keys that could not be removed (remove them with coffer key remove)' } } } },
    async handler(request) {
      const { name } = request.params as { name: string };
      let problems: string[];
      try {
        problems = await directory().revoke(name);
      } catch (error) {
        if (error instanceof CofferError && error.code === 'E_USAGE') throw new ApiError('E_NOT_FOUND', error.message);
        throw error;
      }
      await auditRequest(context, request, { action: 'agent.revoke', target: `/agents/${name}`, outcome: 'success', details: { problems } });
      return { name, problems };
    },
  });
}
