/**
 * The console's only way to the server: typed calls to the REST API under /api/v1, with the
 * types generated from the server's OpenAPI document (schema.d.ts). A path and a method pick
 * the operation; its path parameters, query, body and answer are checked by the compiler.
 *
 * Session protocol (docs/api.md): the login sets an HttpOnly cookie the browser sends by
 * itself; unsafe methods must carry the session's CSRF token in X-CSRF-Token, which the login
 * and GET /auth/me answer, and which is kept here ({@link setCsrfToken}). Every call has a
 * deadline. A 401 on any call but the login tells the listeners that the session is gone
 * ({@link onSessionLost}), so the console returns to the login page and then back.
 */
import type { paths } from './schema';
import { ApiProblem, problemOf, ServerUnreachable } from './problem';

export type Method = 'get' | 'post' | 'put' | 'delete';
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type JsonContent<R> = R extends { content: { 'application/json': infer T } } ? T : undefined;
/** The answer of the operation's first success status (200, 201, 202 or 204). */
export type Answer<P extends keyof paths, M extends Method> = Operation<P, M> extends { responses: infer R }
  ? R extends { 200: infer A } ? JsonContent<A> : R extends { 201: infer A } ? JsonContent<A> : R extends { 202: infer A } ? JsonContent<A> : undefined
  : never;
type BodyOf<O> = O extends { requestBody: { content: { 'application/json': infer B } } } ? B : O extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
type PathOf<O> = O extends { parameters: { path: infer P } } ? (P extends Record<string, unknown> ? P : never) : never;
type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? (Q extends Record<string, unknown> ? Q : never) : never;

export type CallOptions<P extends keyof paths, M extends Method> = {
  params?: PathOf<Operation<P, M>>;
  query?: QueryOf<Operation<P, M>>;
  body?: BodyOf<Operation<P, M>>;
  signal?: AbortSignal;
};

/** Paths that have the method `M`. */
export type PathsWith<M extends Method> = { [P in keyof paths]: paths[P] extends { [K in M]: infer O } ? (O extends undefined ? never : P) : never }[keyof paths];

/** How long any call may take before it counts as "server unreachable". */
export const CALL_TIMEOUT_MS = 20_000;

let csrfToken: string | undefined;
/** A 401 from these means "not signed in" or "wrong password", not "the session was lost". */
const SESSION_PATHS = new Set<string>(['/api/v1/auth/login', '/api/v1/auth/me']);
const sessionLostListeners = new Set<(problem: ApiProblem) => void>();

/** Keeps the session's CSRF token for unsafe calls (from the login answer or /auth/me). */
export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called when a request answers 401: the session expired, was ended, or never was. */
export function onSessionLost(listener: (problem: ApiProblem) => void): () => void {
  sessionLostListeners.add(listener);
  return () => void sessionLostListeners.delete(listener);
}

/** Fills `/users/{name}` with encoded parameters and appends the query. */
export function buildUrl(path: string, params: Record<string, unknown> = {}, query: Record<string, unknown> = {}): string {
  const filled = path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined || value === null) throw new Error(`missing path parameter ${name} for ${path}`);
    return encodeURIComponent(String(value));
  });
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text === '' ? filled : `${filled}?${text}`;
}

/**
 * Calls one operation of the API. Resolves with its answer; rejects with {@link ApiProblem}
 * (the server said no) or {@link ServerUnreachable} (no answer within the deadline).
 *
 * @example const vms = await call('get', '/api/v1/vms', { query: { limit: 20 } });
 */
export async function call<M extends Method, P extends PathsWith<M>>(method: M, path: P, options: CallOptions<P, M> = {}): Promise<Answer<P, M>> {
  const url = buildUrl(path, (options.params ?? {}) as Record<string, unknown>, (options.query ?? {}) as Record<string, unknown>);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'get' && csrfToken !== undefined) headers['x-csrf-token'] = csrfToken;
  const timeout = AbortSignal.timeout(CALL_TIMEOUT_MS);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
  let response: Response;
  try {
    response = await fetch(url, {
      method: method.toUpperCase(),
      headers,
      credentials: 'same-origin',
      signal,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  } catch (error) {
    if (options.signal?.aborted === true) throw error;
    throw new ServerUnreachable(`${method.toUpperCase()} ${path}`, error);
  }
  if (!response.ok) {
    const problem = await problemOf(response);
    if (problem.status === 401 && !SESSION_PATHS.has(path)) for (const listener of sessionLostListeners) listener(problem);
    throw problem;
  }
  if (response.status === 204) return undefined as Answer<P, M>;
  const text = await response.text();
  return (text === '' ? undefined : JSON.parse(text)) as Answer<P, M>;
}

export { ApiProblem, ServerUnreachable };
