/**
 * `GET /metrics` on a Fastify instance, for Prometheus. It is outside the API's users and
 * roles (a scraper has no session), so it takes its own bearer token: with `bearerToken` set,
 * a request without `Authorization: Bearer <token>` gets 401 (compared in constant time); a
 * source that fails gives 503 with one line, never a stack trace. Hidden from the OpenAPI
 * document (`schema.hide`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { CofferMetrics } from './coffer-metrics.js';

export interface MetricsRouteOptions {
  /** When set, scrapes must send `Authorization: Bearer <token>`. */
  bearerToken?: string;
  /** Default `/metrics`. */
  path?: string;
}

/**
 * Registers the route. Call before `app.listen()`/`app.ready()`.
 * @example registerMetricsRoute(app, new CofferMetrics(notifier), { bearerToken })
 */
export function registerMetricsRoute(app: FastifyInstance, metrics: CofferMetrics, options: MetricsRouteOptions = {}): void {
  const expected = options.bearerToken === undefined ? undefined : digest(options.bearerToken);
  app.get(options.path ?? '/metrics', { schema: { hide: true } as Record<string, unknown> }, async (request, reply) => {
    if (expected !== undefined) {
      const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? '');
      if (match === null || !timingSafeEqual(digest(match[1] as string), expected)) {
        return reply.code(401).header('www-authenticate', 'Bearer realm="coffer-metrics"').type('text/plain').send('a bearer token is needed for /metrics\n');
      }
    }
    let text: string;
    try {
      text = await metrics.render();
    } catch (error) {
      request.log.error({ err: error }, 'metrics scrape failed');
      return reply.code(503).type('text/plain').send(`metrics unavailable: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}\n`);
    }
    return reply.type(metrics.contentType).send(text);
  });
}

/** Equal-length digests, so the comparison's time tells nothing of the token. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
