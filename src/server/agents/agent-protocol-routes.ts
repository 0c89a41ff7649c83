/**
 * The agents' side of `coffer server` (docs/agent.md, "the protocol"): `/agent/v1/…`, spoken
 * by `coffer agent` only, so not in the administrators' OpenAPI document. Every request carries
 * the agent's token (`Authorization: Bearer cfr_…`), checked against the agents' token file
 * (the repository server's format, re-read when it changes, so a revoked token is refused from
 * the next request on); too many refused tokens from one address are slowed down as on the
 * repository server. Handlers are thin: authenticate, validate, call the hub.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthFailureLimiter } from '../repo-server/auth-limiter.js';
import type { TokenVerifier } from '../repo-server/token-store.js';
import type { AgentHub } from './agent-hub.js';
import { parseAgentEnd } from './agent-result.js';

export const AGENT_PREFIX = '/agent/v1';
/** The longest a poll waits, s (under common proxies' 60 s idle timeouts). */
export const MAX_POLL_SECONDS = 30;
export const DEFAULT_POLL_SECONDS = 25;

const TEXT = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;
const TASK_ID = { type: 'string', pattern: '^[0-9a-f-]{36}$' } as const;
const hidden = { hide: true } as const;

/** Registers the agent protocol's routes on the server's app. */
export function agentProtocolRoutes(app: FastifyInstance, hub: AgentHub, tokens: TokenVerifier): void {
  const limiter = new AuthFailureLimiter();
  const refuse = (reply: FastifyReply, status: number, code: string, detail: string) =>
    reply.code(status).type('application/problem+json').header('coffer-error', code).send({ type: `urn:coffer:problem:${code.toLowerCase()}`, title: detail, status, detail, code });

  /** The agent's name, or undefined once a refusal was sent. */
  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<string | undefined> => {
    const wait = limiter.blockedFor(request.ip);
    if (wait > 0) {
      reply.header('retry-after', String(Math.ceil(wait / 1000)));
      refuse(reply, 429, 'E_TOO_MANY_FAILURES', `too many refused tokens from ${request.ip}; try again in ${Math.ceil(wait / 1000)} s`);
      return undefined;
    }
    const match = /^Bearer ([A-Za-z0-9._~+/=-]{1,200})$/.exec(request.headers.authorization ?? '');
    const verdict = await tokens.verify(match?.[1]);
    if (typeof verdict !== 'string') return verdict.name;
    if (verdict !== 'missing') limiter.fail(request.ip);
    const detail = { missing: 'no agent token: send Authorization: Bearer <token>', unknown: 'the agent token is not known to this server (revoked, or never made: coffer agent token add NAME)', expired: 'the agent token has expired' }[verdict];
    refuse(reply, 401, 'E_AGENT_REFUSED', detail);
    return undefined;
  };

  app.post(`${AGENT_PREFIX}/hello`, {
    schema: {
      ...hidden,
      body: {
        type: 'object', additionalProperties: false, required: ['hostname', 'os', 'version'],
        properties: { name: TEXT(64), hostname: TEXT(255), os: TEXT(255), version: TEXT(64) },
      },
    },
  }, async (request, reply) => {
    const agent = await authenticate(request, reply);
    if (agent === undefined) return reply;
    const body = request.body as { name?: string; hostname: string; os: string; version: string };
    if (body.name !== undefined && body.name !== agent) return refuse(reply, 401, 'E_AGENT_REFUSED', `this token is agent ${agent}'s, not ${body.name}'s`);
    hub.hello(agent, { hostname: body.hostname, os: body.os, version: body.version });
    return { name: agent, pollSeconds: DEFAULT_POLL_SECONDS, offlineAfterSeconds: Math.round(hub.offlineAfterMs() / 1000) };
  });

  app.post(`${AGENT_PREFIX}/poll`, {
    schema: {
      ...hidden,
      querystring: { type: 'object', additionalProperties: false, properties: { wait: { type: 'integer', minimum: 0, maximum: MAX_POLL_SECONDS } } },
      body: { type: 'object', additionalProperties: false, required: ['running'], properties: { running: { type: 'array', maxItems: 16, items: TASK_ID } } },
    },
  }, async (request, reply) => {
    const agent = await authenticate(request, reply);
    if (agent === undefined) return reply;
    const wait = (request.query as { wait?: number }).wait ?? DEFAULT_POLL_SECONDS;
    const gone = new AbortController();
    reply.raw.once('close', () => gone.abort());
    return hub.poll(agent, (request.body as { running: string[] }).running, wait * 1000, gone.signal);
  });

  app.post(`${AGENT_PREFIX}/tasks/:id/events`, {
    schema: {
      ...hidden,
      params: { type: 'object', required: ['id'], properties: { id: TASK_ID } },
      body: {
        type: 'object', additionalProperties: false,
        properties: {
          progress: { type: 'object', additionalProperties: false, required: ['done', 'total'], properties: { done: { type: 'number', minimum: 0 }, total: { type: 'number', minimum: 0 } } },
          log: { type: 'array', maxItems: 1000, items: { type: 'object', additionalProperties: false, required: ['level', 'line'], properties: { level: { enum: ['info', 'warning', 'error'] }, line: TEXT(4000) } } },
        },
      },
    },
  }, async (request, reply) => {
    const agent = await authenticate(request, reply);
    if (agent === undefined) return reply;
    const id = (request.params as { id: string }).id;
    if (!hub.events(agent, id, request.body as Parameters<AgentHub['events']>[2])) return refuse(reply, 409, 'E_TASK_NOT_FOUND', `agent ${agent} holds no running task ${id} (cancelled or given up): stop it`);
    return reply.code(204).send();
  });

  app.post(`${AGENT_PREFIX}/tasks/:id/end`, {
    schema: { ...hidden, params: { type: 'object', required: ['id'], properties: { id: TASK_ID } }, body: { type: 'object' } },
  }, async (request, reply) => {
    const agent = await authenticate(request, reply);
    if (agent === undefined) return reply;
    const id = (request.params as { id: string }).id;
    const end = parseAgentEnd(request.body);
    if (typeof end === 'string') return refuse(reply, 400, 'E_BAD_REQUEST', `the task's end is malformed: ${end}`);
    if (!hub.end(agent, id, end)) return refuse(reply, 409, 'E_TASK_NOT_FOUND', `agent ${agent} holds no running task ${id} (cancelled or given up)`);
    return reply.code(204).send();
  });
}
