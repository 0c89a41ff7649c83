/**
 * The Fastify application: cookies, the OpenAPI generator (registered before the routes so it
 * sees them all), the deny-by-default security hooks, every route group, and one error
 * handler that turns anything thrown into problem details. No listening here: service.ts does
 * that, so tests and the future multi-server setup (#10) build the same app.
 */
import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { consoleRoutes } from './console-static.js';
import { problem, PROBLEM_CONTENT_TYPE, toProblem } from './problem.js';
import { ROUTE_GROUPS, type RouteGroup } from './routes/index.js';
import { installSecurityHooks } from './security-hooks.js';
import type { ServiceContext } from './service-context.js';

export interface BuildAppOptions {
  /** Passed to Fastify (https options, timeouts). */
  server?: Partial<FastifyServerOptions> & { https?: { key: string; cert: string } };
  /** Extra route groups (the task runner's, later) after the built-in ones. */
  routeGroups?: readonly RouteGroup[];
  /** Where unexpected errors are reported (stack included; never sent to the client). */
  logError?: (error: unknown, where: string) => void;
}

export async function buildApp(context: ServiceContext, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 5 * 1024 * 1024,
    // Reject unknown properties instead of silently dropping them; query strings are text.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    return503OnClosing: true,
    ...(options.server as FastifyServerOptions),
  }) as unknown as FastifyInstance;

  await app.register(cookie);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Coffer',
        version: context.version,
        description: 'The Coffer service API. Authenticate with the session cookie from POST /api/v1/auth/login (and X-CSRF-Token on unsafe methods) or with Authorization: Bearer coffer_…; errors are RFC 9457 problem details. See docs/api.md.',
      },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'coffer_session' },
          token: { type: 'http', scheme: 'bearer', description: 'an API token, coffer_…' },
        },
      },
    },
  });
  installSecurityHooks(app, context);

  app.setErrorHandler(async (error, request, reply) => {
    const { problem: body, internal } = toProblem(error);
    if (internal) options.logError?.(error, `${request.method} ${request.url}`);
    return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
  });
  app.setNotFoundHandler(async (request, reply) =>
    reply.code(404).type(PROBLEM_CONTENT_TYPE).send(problem(404, 'E_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] as string}`)),
  );

  for (const group of [...ROUTE_GROUPS, ...(options.routeGroups ?? [])]) group(app, context);
  consoleRoutes(app);
  await app.ready();
  return app;
}
