/**
 * /api/v1/auth: log in (a session cookie, HttpOnly, Secure, SameSite=Strict, and the
 * session's CSRF token in the answer), log out, who am I, change my password. Logins are rate
 * limited per user and per address, and every attempt is audit-logged with its outcome.
 */
import type { FastifyInstance } from 'fastify';
import { verifyPassword, MIN_PASSWORD_LENGTH } from '../../auth/index.js';
import { ApiError } from '../api-error.js';
import { defineRoute } from '../route.js';
import { SESSION_COOKIE } from '../security-hooks.js';
import { auditRequest, type ServiceContext } from '../service-context.js';
import { GrantSchema, isoTime } from './schemas.js';

const SessionSchema = {
  type: 'object',
  required: ['user', 'kind', 'grants', 'mustChangePassword'],
  properties: {
    user: { type: 'string' },
    kind: { type: 'string', enum: ['session', 'token'] },
    grants: { type: 'array', items: GrantSchema },
    mustChangePassword: { type: 'boolean' },
    csrfToken: { type: 'string', description: 'send it in X-CSRF-Token on every POST, PUT, PATCH and DELETE of this session' },
    expiresAt: { type: 'string', format: 'date-time' },
    fourEyes: { type: 'boolean', description: 'whether destructive operations wait for a second administrator\'s approval (`security.four-eyes`), so a client can say so before asking' },
  },
} as const;

// Compared against when the user does not exist, so both paths take one scrypt's time.
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

export function authRoutes(app: FastifyInstance, context: ServiceContext): void {
  const hours = () => context.config.config.security?.['session-hours'] ?? 12;
  const fourEyes = () => context.config.config.security?.['four-eyes'] === true;

  defineRoute(app, {
    method: 'POST',
    url: '/auth/login',
    operationId: 'login',
    summary: 'Log in: sets the session cookie and returns the CSRF token',
    tag: 'auth',
    access: { public: true },
    body: { type: 'object', additionalProperties: false, required: ['user', 'password'], properties: { user: { type: 'string', minLength: 1, maxLength: 100 }, password: { type: 'string', minLength: 1, maxLength: 1000 } } },
    response: { 200: SessionSchema },
    async handler(request, reply) {
      const { user, password } = request.body as { user: string; password: string };
      const wait = context.throttle.waitFor(user, request.ip);
      if (wait > 0) {
        await auditRequest(context, request, { actor: `user:${user}`, action: 'auth.login', target: `/users/${user}`, outcome: 'denied', details: { reason: 'rate limited' } });
        reply.header('retry-after', String(Math.ceil(wait / 1000)));
        throw new ApiError('E_RATE_LIMITED', `too many failed logins: try again in ${Math.ceil(wait / 1000)} s`);
      }
      const credentials = await context.users.credentials(user);
      const ok = await verifyPassword(password, credentials?.hash ?? DUMMY_HASH);
      if (credentials === undefined || !ok) {
        context.throttle.failed(user, request.ip);
        await auditRequest(context, request, { actor: `user:${user}`, action: 'auth.login', target: `/users/${user}`, outcome: 'failure', details: { reason: credentials === undefined ? 'no such user' : 'wrong password' } });
        throw new ApiError('E_UNAUTHENTICATED', 'wrong user name or password');
      }
      context.throttle.succeeded(user, request.ip);
      const session = await context.sessions.create(credentials.id, request.ip, hours() * 3_600_000);
      const account = await context.users.byId(credentials.id);
      if (account === undefined) throw new ApiError('E_UNAUTHENTICATED', 'wrong user name or password');
      reply.setCookie(SESSION_COOKIE, session.cookie, { path: '/', httpOnly: true, secure: context.secureCookies, sameSite: 'strict', expires: new Date(session.expiresAt) });
      await auditRequest(context, request, { actor: `user:${user}`, action: 'auth.login', target: `/users/${user}`, outcome: 'success' });
      return { user: account.name, kind: 'session', grants: account.grants, mustChangePassword: account.mustChangePassword, csrfToken: session.csrfToken, expiresAt: isoTime(session.expiresAt), fourEyes: fourEyes() };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/auth/logout',
    operationId: 'logout',
    summary: 'End this session',
    tag: 'auth',
    access: { authenticated: true, duringPasswordChange: true, sessionOnly: true },
    response: { 204: null },
    async handler(request, reply) {
      const session = request.principal?.session;
      if (session !== undefined) await context.sessions.delete(session.cookie);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      await auditRequest(context, request, { action: 'auth.logout', target: `/users/${request.principal?.userName ?? ''}`, outcome: 'success' });
      return reply.code(204).send();
    },
  });

  defineRoute(app, {
    method: 'GET',
    url: '/auth/me',
    operationId: 'whoAmI',
    summary: 'The caller: user, grants, and for a session its CSRF token',
    tag: 'auth',
    access: { authenticated: true, duringPasswordChange: true },
    response: { 200: SessionSchema },
    async handler(request) {
      const p = request.principal;
      if (p === undefined) throw new ApiError('E_UNAUTHENTICATED', 'not logged in');
      return {
        user: p.userName,
        kind: p.kind,
        grants: p.grants,
        mustChangePassword: p.mustChangePassword,
        fourEyes: fourEyes(),
        ...(p.session === undefined ? {} : { csrfToken: p.session.csrfToken, expiresAt: isoTime(p.session.expiresAt) }),
      };
    },
  });

  defineRoute(app, {
    method: 'POST',
    url: '/auth/password',
    operationId: 'changePassword',
    summary: 'Change my password (ends my other sessions)',
    tag: 'auth',
    access: { authenticated: true, duringPasswordChange: true, sessionOnly: true },
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['current', 'new'],
      properties: { current: { type: 'string', minLength: 1, maxLength: 1000 }, new: { type: 'string', minLength: MIN_PASSWORD_LENGTH, maxLength: 1000 } },
    },
    response: { 204: null },
    async handler(request, reply) {
      const p = request.principal;
      if (p === undefined) throw new ApiError('E_UNAUTHENTICATED', 'not logged in');
      const body = request.body as { current: string; new: string };
      const credentials = await context.users.credentials(p.userName);
      if (credentials === undefined || !(await verifyPassword(body.current, credentials.hash))) {
        await auditRequest(context, request, { action: 'auth.password', target: `/users/${p.userName}`, outcome: 'failure', details: { reason: 'wrong current password' } });
        throw new ApiError('E_FORBIDDEN', 'the current password is wrong');
      }
      if (body.current === body.new) throw new ApiError('E_VALIDATION', 'the new password must differ from the current one');
      await context.users.setPassword(p.userId, body.new, { mustChange: false });
      await context.sessions.deleteAllOf(p.userId, p.session?.cookie);
      await auditRequest(context, request, { action: 'auth.password', target: `/users/${p.userName}`, outcome: 'success' });
      return reply.code(204).send();
    },
  });
}
