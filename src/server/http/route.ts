/**
 * How a route is declared: once, with its schemas (validation, serialization and the OpenAPI
 * document all come from them) and the access it needs. `access` is mandatory: a route under
 * /api/v1 without it stops the server at start-up (security-hooks.ts), so nothing is reachable
 * by omission. The permission is also written into the OpenAPI document as `x-permission`, so
 * the security tests derive what to expect for every operation from the document alone.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import type { Permission, Principal } from '../auth/index.js';
import { PROBLEM_CONTENT_TYPE, ProblemSchema } from './problem.js';

export const API_PREFIX = '/api/v1';

export type RouteAccess =
  /** Anyone, logged in or not (login, the OpenAPI document, the reference page, health). */
  | { public: true }
  /** Any logged-in caller. `duringPasswordChange`: also before the one-time password is replaced; `sessionOnly`: not with a token. */
  | { authenticated: true; duringPasswordChange?: boolean; sessionOnly?: boolean }
  /** The permission on the object's paths (default `/`), derived from the request's params. */
  | { permission: Permission; paths?: (request: FastifyRequest) => string[] }
  /** A list: the permission somewhere; the handler keeps only the items the caller may see ({@link canSee}). */
  | { permission: Permission; filtered: true };

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling; set by the authentication hook for every non-public route. */
    principal?: Principal;
  }
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

export interface RouteDefinition {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** Relative to /api/v1, e.g. `/users/:name`. */
  url: string;
  operationId: string;
  summary: string;
  tag: string;
  description?: string;
  params?: object;
  querystring?: object;
  body?: object;
  /** Success responses by status; error responses (problem details) are added. */
  response: Record<number, object | null>;
  access: RouteAccess;
  handler(request: FastifyRequest, reply: FastifyReply): Promise<unknown>;
}

/** The `x-permission` value of an access declaration. */
export function permissionLabel(access: RouteAccess): string {
  if ('public' in access) return 'public';
  if ('authenticated' in access) return 'authenticated';
  return access.permission;
}

const problemResponse = (description: string) => ({ description, content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } } });

/** Registers a route declared as a {@link RouteDefinition}. */
export function defineRoute(app: FastifyInstance, route: RouteDefinition): void {
  const response: Record<string, unknown> = {};
  for (const [status, schema] of Object.entries(route.response)) {
    response[status] = schema === null ? { description: 'no content', type: 'null' } : { description: 'success', ...schema };
  }
  response['4xx'] = problemResponse('the request was refused: problem details (RFC 9457)');
  response['5xx'] = problemResponse('the server failed: problem details (RFC 9457)');
  const isPublic = 'public' in route.access;
  app.route({
    method: route.method,
    url: `${API_PREFIX}${route.url}`,
    config: { access: route.access },
    schema: {
      // Copied into the OpenAPI operation by @fastify/swagger (x- keys pass through).
      operationId: route.operationId,
      summary: route.summary,
      ...(route.description === undefined ? {} : { description: route.description }),
      tags: [route.tag],
      security: isPublic ? [] : [{ session: [] }, { token: [] }],
      'x-permission': permissionLabel(route.access),
      ...(route.params === undefined ? {} : { params: route.params }),
      ...(route.querystring === undefined ? {} : { querystring: route.querystring }),
      ...(route.body === undefined ? {} : { body: route.body }),
      response,
    } as FastifySchema,
    handler: route.handler,
  });
}
