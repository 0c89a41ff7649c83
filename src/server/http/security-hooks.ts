/**
 * Deny by default, enforced in two hooks:
 * - at start-up (`onRoute`): every route under /api/v1 must declare its access, or the
 *   server refuses to start;
 * - on every request (`onRequest`, before the body is even read): authenticate (Bearer token,
 *   else the `coffer_session` cookie), require the session's CSRF token in `X-CSRF-Token` on
 *   unsafe methods when authenticated by cookie, hold a user with a one-time password to the
 *   password change, and check the declared permission on the object's paths.
 * Refusals of unsafe requests are audit-logged (`denied`).
 */
import { timingSafeEqual } from 'node:crypto';
import type {} from '@fastify/cookie';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { allows, allowsSomewhere } from '../auth/index.js';
import { ApiError } from './api-error.js';
import { API_PREFIX } from './route.js';
import { auditRequest, type ServiceContext } from './service-context.js';

export const SESSION_COOKIE = 'coffer_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function installSecurityHooks(app: FastifyInstance, context: ServiceContext): void {
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith(API_PREFIX)) return;
    if (route.config?.access === undefined) throw new Error(`route ${String(route.method)} ${route.url} declares no access: every route must (deny by default)`);
  });

  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access;
    if (access === undefined || 'public' in access) return;
    try {
      await check(request, context);
    } catch (error) {
      if (error instanceof ApiError && error.status === 403 && !SAFE_METHODS.has(request.method)) {
        await auditRequest(context, request, { action: 'access.denied', target: request.url.split('?')[0] as string, outcome: 'denied', details: { method: request.method, code: error.code } });
      }
      throw error;
    }
  });
}

async function check(request: FastifyRequest, context: ServiceContext): Promise<void> {
  const access = request.routeOptions.config.access;
  if (access === undefined || 'public' in access) return;
  const authentication = await context.authenticator.authenticate({ cookie: request.cookies[SESSION_COOKIE], authorization: request.headers.authorization });
  if ('failure' in authentication) {
    throw new ApiError('E_UNAUTHENTICATED', authentication.failure === 'expired' ? 'the session or token has expired: log in again or use a new token' : 'the session or token is not valid');
  }
  if ('none' in authentication) throw new ApiError('E_UNAUTHENTICATED', 'log in (POST /api/v1/auth/login) or send Authorization: Bearer coffer_…');
  const principal = authentication.principal;
  request.principal = principal;
  if (principal.session !== undefined && !SAFE_METHODS.has(request.method)) {
    const sent = request.headers['x-csrf-token'];
    if (typeof sent !== 'string' || !sameText(sent, principal.session.csrfToken)) {
      throw new ApiError('E_CSRF', 'this request needs the session\'s CSRF token in the X-CSRF-Token header (from the login answer or GET /api/v1/auth/me)');
    }
  }
  if (principal.mustChangePassword && !('authenticated' in access && access.duringPasswordChange === true)) {
    throw new ApiError('E_PASSWORD_CHANGE_REQUIRED', 'change the one-time password first: POST /api/v1/auth/password');
  }
  if ('authenticated' in access) {
    if (access.sessionOnly === true && principal.kind !== 'session') throw new ApiError('E_FORBIDDEN', 'only a console session may do this, not an API token');
    return;
  }
  const permitted = 'filtered' in access ? allowsSomewhere(principal.grants, access.permission) : allows(principal.grants, access.permission, access.paths?.(request) ?? ['/']);
  if (!permitted) throw new ApiError('E_FORBIDDEN', `${principal.kind === 'token' ? 'this token' : `user ${principal.userName}`} lacks the permission ${access.permission} here`);
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** True when the caller may see an object living under `paths` (for filtered lists). */
export function canSee(request: FastifyRequest, permission: Parameters<typeof allows>[1], paths: readonly string[]): boolean {
  return request.principal !== undefined && allows(request.principal.grants, permission, paths);
}
