import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { CofferError, isCofferError } from '../../errors/index.js';
import { checkedKey, readRange, type Backend } from '../../repo/index.js';
import { contentDigestOf, deleteAccess, listScope, ownershipKey, putAccess, readAccess, recordsOwner } from './access-policy.js';
import { AuthFailureLimiter } from './auth-limiter.js';
import { ListSessions } from './list-sessions.js';
import { OwnerIndex } from './owner-index.js';
import { problem, problemOf, type Problem } from './problem.js';
import { tokensFile, TokenVerifier, type Principal } from './token-store.js';

/**
 * Settings of the repository server, each default with its reason.
 * - maxObjectBytes 80 MiB: the largest object Coffer writes is an envelope of a 64 MiB
 *   plaintext (a chunk is at most 16 MiB today); the rest is headroom, not an invitation.
 * - maxListPage 1000: keys per listing page (~100 KB of JSON); maxHasBatch 1000: keys per
 *   batched existence check, likewise.
 * - requestTimeoutMs 5 min: a whole request (an 80 MiB put at ~300 KB/s) must arrive in it;
 *   a client that stalls forever does not hold a connection forever.
 */
export const REPO_SERVER_DEFAULTS = { maxObjectBytes: 80 * 1024 * 1024, maxListPage: 1000, maxHasBatch: 1000, requestTimeoutMs: 5 * 60_000 } as const;

/** What {@link startRepoServer} serves, where, and how. */
export interface RepoServerOptions {
  /** Repository name (the URL's first path segment) → the backend holding it. */
  repositories: Map<string, Backend>;
  /** Where tokens.json and owners/ live (tls/ too, but the identity is given here). */
  stateDir: string;
  tls: { cert: string; key: string };
  host: string;
  /** 0: any free port (the one chosen is in the result). */
  port: number;
  maxObjectBytes?: number;
  /** One line per noteworthy event (a 5xx, a refused token); the core never prints. */
  log?: (line: string) => void;
}

/** A running server. */
export interface RunningRepoServer {
  /** `https://HOST:PORT` as bound (the port resolved when 0 was asked). */
  origin: string;
  port: number;
  close(): Promise<void>;
}

interface Served {
  backend: Backend;
  owners: OwnerIndex;
  /** Puts and deletes of one key run one at a time (a check-then-write must not interleave). */
  locks: Map<string, Promise<void>>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The agent token a repository-server request carries (repo-server only; the API has `principal`). */
    repoAgent: Principal | null;
  }
}

/**
 * The repository server (docs/repository-server.md has the protocol): each repository's
 * backend over HTTPS, one route per Backend method, every request authenticated by a bearer
 * token and checked against access-policy.ts. Handlers are thin: authenticate, decide, call
 * the backend, map errors to problem documents (problem.ts).
 */
export async function startRepoServer(options: RepoServerOptions): Promise<RunningRepoServer> {
  const maxObjectBytes = options.maxObjectBytes ?? REPO_SERVER_DEFAULTS.maxObjectBytes;
  const log = options.log ?? (() => {});
  const tokens = new TokenVerifier(tokensFile(options.stateDir));
  await tokens.load();
  const served = new Map<string, Served>();
  for (const [name, backend] of options.repositories) {
    served.set(name, { backend, owners: await OwnerIndex.open(join(options.stateDir, 'owners', `${name}.jsonl`)), locks: new Map() });
  }
  const limiter = new AuthFailureLimiter();
  const listings = new ListSessions();

  const app = Fastify({
    https: { cert: options.tls.cert, key: options.tls.key },
    logger: false,
    bodyLimit: maxObjectBytes,
    exposeHeadRoutes: false,
    requestTimeout: REPO_SERVER_DEFAULTS.requestTimeoutMs,
    keepAliveTimeout: 65_000,
  });
  app.decorateRequest('repoAgent', null);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: maxObjectBytes }, (_request, body, done) => done(null, body));
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: REPO_SERVER_DEFAULTS.maxHasBatch * 400 }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(Object.assign(new Error('the body is not JSON'), { code: 'FST_ERR_CTP_INVALID_JSON' }));
    }
  });

  const send = (reply: FastifyReply, p: Problem) =>
    reply
      .code(p.status)
      .header('content-type', 'application/problem+json')
      .header('coffer-error', p.code)
      .send(JSON.stringify({ type: `urn:coffer:problem:${p.code.toLowerCase()}`, title: p.title, status: p.status, detail: p.detail, code: p.code }));

  app.addHook('onRequest', async (request, reply) => {
    const address = request.ip;
    const wait = limiter.blockedFor(address);
    if (wait > 0) {
      reply.header('retry-after', String(Math.ceil(wait / 1000)));
      return send(reply, problem('E_TOO_MANY_FAILURES', `too many refused tokens from ${address}; try again in ${Math.ceil(wait / 1000)} s`));
    }
    const header = request.headers.authorization ?? '';
    const match = /^Bearer ([A-Za-z0-9._~+/=-]{1,200})$/.exec(header);
    const verdict = await tokens.verify(match?.[1]);
    if (typeof verdict === 'string') {
      if (verdict !== 'missing') {
        limiter.fail(address);
        log(`refused a token (${verdict}) from ${address} for ${request.method} ${request.url.split('?')[0]}`);
      }
      const detail = { missing: 'no token: send Authorization: Bearer <token>', unknown: 'the token is not known to this server', expired: 'the token has expired' }[verdict];
      // RFC 6750's error_description carries the reason to HEAD requests too (they have no body).
      reply.header('www-authenticate', verdict === 'missing' ? 'Bearer realm="coffer"' : `Bearer realm="coffer", error="invalid_token", error_description="${detail}"`);
      return send(reply, problem('E_UNAUTHENTICATED', detail));
    }
    request.repoAgent = verdict;
    if (request.method === 'PUT' && request.headers['content-length'] === undefined) {
      return send(reply, problem('E_LENGTH_REQUIRED', 'a put must send Content-Length (no chunked uploads)'));
    }
  });

  app.setErrorHandler((error, _request, reply) => {
    const fastifyCode = (error as { code?: string }).code ?? '';
    if (fastifyCode === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(reply, problem('E_TOO_LARGE', `objects are at most ${maxObjectBytes} bytes`));
    if (fastifyCode.startsWith('FST_ERR_CTP') || fastifyCode === 'FST_ERR_VALIDATION') return send(reply, problem('E_BAD_REQUEST', error instanceof Error ? error.message : String(error)));
    const p = problemOf(error);
    if (p.status >= 500) log(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return send(reply, p);
  });
  app.setNotFoundHandler((request, reply) => send(reply, problem('E_BAD_REQUEST', `no such route: ${request.method} ${request.url.split('?')[0]}`)));

  /** The repository a request names, its principal and its key (checked), or a problem sent. */
  const target = (request: FastifyRequest, reply: FastifyReply, withKey: boolean) => {
    const params = request.params as { repo: string; '*'?: string };
    const repo = served.get(params.repo);
    if (repo === undefined) {
      send(reply, { status: 404, code: 'E_REPO_NOT_FOUND', title: 'no such repository', detail: `this server serves no repository named ${params.repo}` });
      return undefined;
    }
    let key = '';
    if (withKey) {
      try {
        key = checkedKey(params['*'] ?? '');
      } catch {
        send(reply, problem('E_BAD_KEY', `${JSON.stringify(params['*'] ?? '')} is not an object key ([a-z0-9._-] segments joined by /)`));
        return undefined;
      }
    }
    return { name: params.repo, repo, key, who: request.repoAgent as Principal };
  };

  const locked = async <T>(repo: Served, key: string, fn: () => Promise<T>): Promise<T> => {
    const before = repo.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const chain = before.then(() => mine);
    repo.locks.set(key, chain);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (repo.locks.get(key) === chain) repo.locks.delete(key);
    }
  };

  app.get('/:repo/objects/*', async (request, reply) => {
    const t = target(request, reply, true);
    if (t === undefined) return reply;
    const access = readAccess(t.who, t.key, t.repo.owners.ownerOf(ownershipKey(t.key)));
    if (access === 'denied') return send(reply, problem('E_ACCESS_DENIED', `an append-only token may not read ${t.key}`));
    if (access === 'hidden') return send(reply, { status: 404, code: 'E_MISSING_OBJECT', title: 'no such object', detail: `no object ${t.key}` });
    const rangeHeader = request.headers.range;
    if (rangeHeader === undefined) {
      const data = await t.repo.backend.get(t.key);
      return reply.code(200).header('content-type', 'application/octet-stream').send(data);
    }
    // A ranged read (format 2 reads one frame of a pack): one closed range only.
    const range = parseByteRange(rangeHeader);
    if (range === null) return send(reply, problem('E_BAD_REQUEST', `Range must be one closed range "bytes=FIRST-LAST", not ${JSON.stringify(rangeHeader).slice(0, 100)}`));
    try {
      const data = await readRange(t.repo.backend, t.key, range.offset, range.length);
      return reply
        .code(206)
        .header('content-type', 'application/octet-stream')
        .header('content-range', `bytes ${range.offset}-${range.offset + range.length - 1}/*`)
        .send(data);
    } catch (error) {
      if (!isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
      // The object is shorter than the range: 416, and the client reports the short object.
      return send(reply, { status: 416, code: 'E_CORRUPT_OBJECT', title: 'the range lies beyond the object', detail: error.message.split('\n')[0] ?? '' });
    }
  });

  app.head('/:repo/objects/*', async (request, reply) => {
    const t = target(request, reply, true);
    if (t === undefined) return reply;
    const access = readAccess(t.who, t.key, t.repo.owners.ownerOf(ownershipKey(t.key)));
    if (access === 'denied') return send(reply, problem('E_ACCESS_DENIED', `an append-only token may not read ${t.key}`));
    const present = access === 'yes' && (await t.repo.backend.has(t.key));
    if (!present) return send(reply, { status: 404, code: 'E_MISSING_OBJECT', title: 'no such object', detail: `no object ${t.key}` });
    return reply.code(200).send();
  });

  app.put('/:repo/objects/*', async (request, reply) => {
    const t = target(request, reply, true);
    if (t === undefined) return reply;
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    return locked(t.repo, t.key, async () => {
      // Checked first: bytes that are not the pack named are refused, stored or not.
      const digest = t.who.appendOnly ? contentDigestOf(t.key) : null;
      if (digest !== null && createHash('sha256').update(body).digest('hex') !== digest) {
        return send(reply, problem('E_BAD_REQUEST', `the bytes sent for ${t.key} do not hash to its id (a pack is named by the SHA-256 of its bytes)`));
      }
      const exists = await t.repo.backend.has(t.key);
      const decision = putAccess(t.who, t.key, exists ? { owner: t.repo.owners.ownerOf(t.key) } : null);
      if (decision === 'denied') return send(reply, problem('E_ACCESS_DENIED', `an append-only token may not write ${t.key}`));
      // `If-None-Match: *`: Backend.create, for a new repository's config (backend.ts).
      if (request.headers['if-none-match'] === '*') {
        if (!exists) {
          if (t.who.appendOnly && recordsOwner(t.key)) await t.repo.owners.record(t.key, t.who.name);
          if (await t.repo.backend.create(t.key, body)) return reply.code(201).header('coffer-object', 'created').send();
        }
        if ((await t.repo.backend.get(t.key)).equals(body)) return reply.code(200).header('coffer-object', 'identical').send();
        return send(reply, problem('E_OBJECT_EXISTS', `${t.key} exists already`));
      }
      if (decision === 'keep') return reply.code(200).header('coffer-object', 'kept').send();
      if (decision === 'same-bytes') {
        if ((await t.repo.backend.get(t.key)).equals(body)) return reply.code(200).header('coffer-object', 'identical').send();
        return send(reply, problem('E_OVERWRITE_REFUSED', `${t.key} exists with other content; an append-only token never replaces an object`));
      }
      // The writer is recorded before the object appears (owner-index.ts says why).
      if (t.who.appendOnly && recordsOwner(t.key)) await t.repo.owners.record(t.key, t.who.name);
      await t.repo.backend.put(t.key, body);
      return reply.code(exists ? 200 : 201).header('coffer-object', exists ? 'replaced' : 'created').send();
    });
  });

  app.delete('/:repo/objects/*', async (request, reply) => {
    const t = target(request, reply, true);
    if (t === undefined) return reply;
    return locked(t.repo, t.key, async () => {
      if (!deleteAccess(t.who, t.key, t.repo.owners.ownerOf(t.key))) {
        return send(reply, problem('E_ACCESS_DENIED', 'an append-only token never deletes, except its own leases'));
      }
      await t.repo.backend.delete(t.key);
      if (recordsOwner(t.key)) await t.repo.owners.record(t.key, null);
      return reply.code(204).send();
    });
  });

  app.get('/:repo/objects', async (request, reply) => {
    const t = target(request, reply, false);
    if (t === undefined) return reply;
    const query = request.query as { prefix?: unknown; limit?: unknown; cursor?: unknown };
    const prefix = typeof query.prefix === 'string' ? query.prefix : '';
    const limit = query.limit === undefined ? REPO_SERVER_DEFAULTS.maxListPage : Number(query.limit);
    if (!/^[a-z0-9._/-]{0,300}$/.test(prefix) || !Number.isInteger(limit) || limit < 1 || limit > REPO_SERVER_DEFAULTS.maxListPage) {
      return send(reply, problem('E_BAD_REQUEST', `prefix must be [a-z0-9._/-]* and limit 1..${REPO_SERVER_DEFAULTS.maxListPage}`));
    }
    const scope = listScope(t.who, prefix);
    if (scope === 'denied') return send(reply, problem('E_ACCESS_DENIED', `an append-only token may not list ${prefix === '' ? 'the whole repository' : prefix} (ask for objects by id)`));
    let page;
    if (typeof query.cursor === 'string') {
      page = await listings.continue(`${t.name}:${t.who.name}`, query.cursor, limit);
      if (page === 'gone') return send(reply, problem('E_CURSOR_GONE', 'this listing cursor is unknown or expired; list again from the start'));
      if (page === 'busy') return reply.code(503).header('retry-after', '1').send();
    } else {
      const owners = t.repo.owners;
      const name = t.who.name;
      const entries = t.repo.backend.list(prefix);
      const filtered = scope === 'own' ? ownOnly(entries, (key) => owners.ownerOf(ownershipKey(key)) === name) : entries;
      page = await listings.start(`${t.name}:${name}`, filtered, limit);
    }
    return reply.code(200).header('content-type', 'application/json').send(JSON.stringify(page));
  });

  app.post('/:repo/has', async (request, reply) => {
    const t = target(request, reply, false);
    if (t === undefined) return reply;
    const keys = (request.body as { keys?: unknown } | undefined)?.keys;
    if (!Array.isArray(keys) || keys.length === 0 || keys.length > REPO_SERVER_DEFAULTS.maxHasBatch || !keys.every((key) => typeof key === 'string')) {
      return send(reply, problem('E_BAD_REQUEST', `expected {"keys": [1..${REPO_SERVER_DEFAULTS.maxHasBatch} keys]}`));
    }
    const checked: string[] = [];
    for (const key of keys as string[]) {
      try {
        checked.push(checkedKey(key));
      } catch {
        return send(reply, problem('E_BAD_KEY', `${JSON.stringify(key).slice(0, 200)} is not an object key`));
      }
    }
    const present = await Promise.all(checked.map(async (key) => {
      const access = readAccess(t.who, key, t.repo.owners.ownerOf(ownershipKey(key)));
      if (access === 'denied') return null;
      return access === 'yes' && (await t.repo.backend.has(key));
    }));
    return reply.code(200).header('content-type', 'application/json').send(JSON.stringify({ present }));
  });

  app.post('/:repo/sync', async (request, reply) => {
    const t = target(request, reply, false);
    if (t === undefined) return reply;
    await t.repo.backend.sync();
    return reply.code(204).send();
  });

  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    listings.close();
    for (const repo of served.values()) await repo.owners.close();
    throw new CofferError('E_CONNECTION_FAILED', `cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`, { cause: error });
  }
  const port = (app.server.address() as { port: number }).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    origin: `https://${host}:${port}`,
    port,
    async close() {
      listings.close();
      await app.close();
      for (const repo of served.values()) await repo.owners.close();
    },
  };
}

async function* ownOnly<T extends { key: string }>(entries: AsyncIterable<T>, mine: (key: string) => boolean): AsyncIterable<T> {
  for await (const entry of entries) if (mine(entry.key)) yield entry;
}

/**
 * The one closed byte range of a `Range` header (RFC 9110 §14.1.2: `bytes=FIRST-LAST`, both
 * inclusive), or null for anything else (suffix ranges, open ranges, several ranges).
 */
export function parseByteRange(header: string): { offset: number; length: number } | null {
  const match = /^bytes=(\d{1,15})-(\d{1,15})$/.exec(header.trim());
  if (match === null) return null;
  const first = Number(match[1]);
  const last = Number(match[2]);
  return last < first ? null : { offset: first, length: last - first + 1 };
}
