import { CofferError, type ErrorCode } from '../../errors/index.js';
import type { Backend, BackendEntry } from './backend.js';
import { checkedKey } from './backend-key.js';
import type { HttpLocation } from './http-location.js';
import { HttpsTransport, type HttpAnswer } from './https-transport.js';

/**
 * Settings of {@link HttpBackend}, each default with its reason.
 * - attempts 6, backoff 200 ms doubling to a 5 s cap with full jitter: rides out ~15 s of a
 *   server restarting; only network failures, timeouts, 429 and 5xx are retried (a 4xx says
 *   the same thing every time). Every method is idempotent, so a retry is always safe (a put
 *   re-sent after a lost answer meets its own identical bytes, which the server accepts).
 * - maxSockets 32: a backup keeps dozens of puts in flight; the server answers each on its own.
 * - connectTimeoutMs 10 s, idleTimeoutMs 60 s (no byte either way: a 64 MiB object at 2 MB/s
 *   still moves bytes every second): nothing waits forever on a dead server.
 * - listPageSize 1000: a page of keys is ~100 KB of JSON.
 * - hasBatchesInFlight 2, hasBatchSize 1000: existence checks leave in batches (POST /has);
 *   with a backup's 16 concurrent checks, one request answers ~8 of them. Measured in
 *   docs/repository-server.md.
 */
export const HTTP_DEFAULTS = {
  attempts: 6,
  backoffBaseMs: 200,
  backoffCapMs: 5000,
  maxSockets: 32,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  listPageSize: 1000,
  hasBatchesInFlight: 2,
  hasBatchSize: 1000,
} as const;

type HttpSettings = { -readonly [K in keyof typeof HTTP_DEFAULTS]: number };

/** Options of {@link HttpBackend}. */
export interface HttpBackendOptions extends Partial<HttpSettings> {
  /** The bearer token the server issued (`coffer serve-repo token add`). */
  token: string;
  /** The pinned SHA-256 fingerprint of the server's certificate (see {@link HttpsTransport}). */
  fingerprint?: string;
  /** PEM CA certificates to trust instead of the system's. */
  ca?: string | Buffer;
}

/** Node's codes for failures a later attempt may not meet (the server restarting, a dropped connection). */
const RETRIED_NETWORK_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);
const TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]{1,200}$/;

interface PendingHas {
  key: string;
  resolve: (present: boolean) => void;
  reject: (error: unknown) => void;
}

type Operation = 'read' | 'write' | 'check' | 'delete' | 'list' | 'sync';

/**
 * A repository served by `coffer serve-repo` (docs/repository-server.md has the protocol):
 * each Backend method is one HTTPS request (a listing, one per page), on a keep-alive pool,
 * with deadlines and retries (see {@link HTTP_DEFAULTS}). How each promise of {@link Backend}
 * is kept: the server stores through its own backend (local or S3), which makes puts atomic;
 * the client sends the whole object with its length, and the server publishes it only once
 * every byte arrived. Errors: 401/403 are `E_ACCESS_DENIED` naming the operation, a pin or CA
 * mismatch `E_SERVER_UNTRUSTED`, 404 on a read `E_MISSING_OBJECT`, an unknown repository
 * `E_REPO_NOT_FOUND`, 507 `E_NO_SPACE`, the rest (after retries) `E_BACKEND_IO`.
 */
export class HttpBackend implements Backend {
  readonly location: string;
  /** A round trip per object, like S3: restore reads ahead and backup uploads this many at once (one per socket). */
  readonly preferredConcurrency: number;
  private readonly transport: HttpsTransport;
  private readonly settings: HttpSettings;
  private readonly base: string;
  private readonly authorization: string;
  private readonly pendingHas: PendingHas[] = [];
  private hasBatchesInFlight = 0;

  constructor(target: HttpLocation, options: HttpBackendOptions) {
    this.location = target.display;
    this.settings = { ...HTTP_DEFAULTS };
    for (const name of Object.keys(HTTP_DEFAULTS) as (keyof HttpSettings)[]) {
      const value = options[name];
      if (value !== undefined) this.settings[name] = value;
    }
    this.preferredConcurrency = this.settings.maxSockets;
    this.base = `/${encodeURIComponent(target.repository)}`;
    if (!TOKEN_PATTERN.test(options.token)) {
      throw new CofferError('E_USAGE', `the token for ${this.location} is not one coffer serve-repo issues (letters, digits and ._~+/=-, at most 200): check --repo-token-file or COFFER_REPO_TOKEN`);
    }
    this.authorization = `Bearer ${options.token}`;
    this.transport = new HttpsTransport(target.origin, {
      maxSockets: this.settings.maxSockets,
      connectTimeoutMs: this.settings.connectTimeoutMs,
      idleTimeoutMs: this.settings.idleTimeoutMs,
      ...(options.fingerprint === undefined ? {} : { fingerprint: options.fingerprint }),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    });
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const answer = await this.exchange('PUT', this.objectPath(key), 'write', key, data);
    if (answer.status !== 200 && answer.status !== 201 && answer.status !== 204) throw this.failure(answer, 'write', key);
  }

  /**
   * A put with `If-None-Match: *`: the server answers 412 when the key holds other bytes. A
   * server from before 2026-11-29 ignores the header and answers `Coffer-Object: replaced`
   * over an existing object: that is `E_PROTOCOL` (the other writer's object is gone).
   */
  async create(key: string, data: Uint8Array): Promise<boolean> {
    const answer = await this.exchange('PUT', this.objectPath(key), 'write', key, data, undefined, { 'if-none-match': '*' });
    if (answer.status === 412) return false;
    if (answer.status !== 200 && answer.status !== 201) throw this.failure(answer, 'write', key);
    if (answer.headers['coffer-object'] === 'replaced') {
      throw new CofferError('E_PROTOCOL', `${this.location} replaced ${key} where it was asked to create it only if absent: the repository server is too old for this; upgrade it`, { subject: { repository: this.location, object: key } });
    }
    return true;
  }

  async sync(): Promise<void> {
    const answer = await this.exchange('POST', `${this.base}/sync`, 'sync', '');
    if (answer.status !== 204 && answer.status !== 200) throw this.failure(answer, 'sync', '');
  }

  async get(key: string): Promise<Buffer> {
    const answer = await this.exchange('GET', this.objectPath(key), 'read', key);
    if (answer.status !== 200) throw this.failure(answer, 'read', key);
    return answer.body;
  }

  /**
   * One ranged GET (`Range: bytes=FIRST-LAST`, answered 206; docs/repository-server.md). A
   * range beyond the object's end is answered 416, thrown as `E_CORRUPT_OBJECT` like every
   * backend's short object; an answer of another length is `E_PROTOCOL`.
   */
  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 1) throw new RangeError(`bad range ${offset}+${length} of ${key}`);
    const answer = await this.exchange('GET', this.objectPath(key), 'read', key, undefined, undefined, { range: `bytes=${offset}-${offset + length - 1}` });
    if (answer.status === 416) {
      throw new CofferError('E_CORRUPT_OBJECT', `object ${key} on ${this.location} is shorter than the ${length} bytes asked for at offset ${offset}`, { subject: { repository: this.location, object: key } });
    }
    if (answer.status !== 206) throw this.failure(answer, 'read', key);
    if (answer.body.length !== length) {
      throw new CofferError('E_PROTOCOL', `${this.location} answered a read of ${length} bytes of ${key} at offset ${offset} with ${answer.body.length} bytes`, { subject: { repository: this.location, object: key } });
    }
    return answer.body;
  }

  /**
   * Existence checks are batched: one goes out at once, and those asked while
   * `hasBatchesInFlight` batches are already out wait and leave together as one request
   * (a backup asks about every new block, 16 at a time). See {@link HTTP_DEFAULTS}.
   */
  has(key: string): Promise<boolean> {
    try {
      checkedKey(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<boolean>((resolve, reject) => {
      this.pendingHas.push({ key, resolve, reject });
      this.flushHas();
    });
  }

  private flushHas(): void {
    while (this.pendingHas.length > 0 && this.hasBatchesInFlight < this.settings.hasBatchesInFlight) {
      const batch = this.pendingHas.splice(0, this.settings.hasBatchSize);
      this.hasBatchesInFlight++;
      void this.hasBatch(batch).finally(() => {
        this.hasBatchesInFlight--;
        this.flushHas();
      });
    }
  }

  private async hasBatch(batch: PendingHas[]): Promise<void> {
    const label = batch.length === 1 ? (batch[0] as PendingHas).key : `${batch.length} keys`;
    try {
      const body = Buffer.from(JSON.stringify({ keys: batch.map((item) => item.key) }), 'utf8');
      const answer = await this.exchange('POST', `${this.base}/has`, 'check', label, body, 'application/json');
      if (answer.status !== 200) throw this.failure(answer, 'check', label);
      const present = parseHasAnswer(answer.body, batch.length, this.location);
      batch.forEach((item, i) => {
        const value = present[i];
        if (value === null) item.reject(new CofferError('E_ACCESS_DENIED', `${this.location} does not allow this token to check ${item.key}`, { subject: { repository: this.location, object: item.key } }));
        else item.resolve(value === true);
      });
    } catch (error) {
      for (const item of batch) item.reject(error);
    }
  }

  async delete(key: string): Promise<void> {
    const answer = await this.exchange('DELETE', this.objectPath(key), 'delete', key);
    if (answer.status !== 204 && answer.status !== 200) throw this.failure(answer, 'delete', key);
  }

  async *list(prefix: string): AsyncIterable<BackendEntry> {
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams({ prefix, limit: String(this.settings.listPageSize) });
      if (cursor !== null) query.set('cursor', cursor);
      const answer = await this.exchange('GET', `${this.base}/objects?${query.toString()}`, 'list', prefix);
      if (answer.status !== 200) throw this.failure(answer, 'list', prefix);
      const page = parseListPage(answer.body, this.location, prefix);
      yield* page.entries;
      cursor = page.cursor;
    } while (cursor !== null);
  }

  /** Closes the connections (the backend cannot be used afterwards). */
  destroy(): void {
    this.transport.destroy();
  }

  private objectPath(key: string): string {
    return `${this.base}/objects/${checkedKey(key)}`;
  }

  /** One request with retries on network failures, timeouts, 429 and 5xx; the last answer otherwise. */
  private async exchange(method: string, path: string, operation: Operation, key: string, body?: Uint8Array, contentType = 'application/octet-stream', extraHeaders: Record<string, string> = {}): Promise<HttpAnswer> {
    for (let attempt = 1; ; attempt++) {
      let answer: HttpAnswer | undefined;
      let failure: unknown;
      try {
        const headers: Record<string, string> = { ...extraHeaders, authorization: this.authorization, accept: 'application/octet-stream, application/json, application/problem+json' };
        if (body !== undefined) headers['content-type'] = contentType;
        answer = await this.transport.send(method, path, body, headers);
      } catch (error) {
        if (error instanceof CofferError) throw error; // untrusted certificate: never retried
        if (!RETRIED_NETWORK_ERRORS.has((error as NodeJS.ErrnoException).code ?? '')) throw this.unreachable(error, operation, key, attempt);
        failure = error;
      }
      const retryable = answer === undefined || answer.status === 429 || answer.status >= 500;
      if (!retryable && answer !== undefined) return answer;
      if (attempt >= this.settings.attempts) {
        if (answer !== undefined) return answer;
        throw this.unreachable(failure, operation, key, attempt);
      }
      const retryAfter = Number(answer?.headers['retry-after']);
      const backoff = Math.random() * Math.min(this.settings.backoffCapMs, this.settings.backoffBaseMs * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, this.settings.backoffCapMs) : backoff));
    }
  }

  private unreachable(error: unknown, operation: Operation, key: string, attempts: number): CofferError {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    const reason = error instanceof Error ? error.message : String(error);
    return new CofferError('E_BACKEND_IO', `cannot ${operation} ${key || 'the repository'} on ${this.location}: ${code ?? ''}${code ? ' ' : ''}${reason} (${attempts} attempts)`, {
      subject: { repository: this.location, object: key },
      cause: error,
    });
  }

  /** The CofferError for a final non-success answer, from its problem document when it has one. */
  private failure(answer: HttpAnswer, operation: Operation, key: string): CofferError {
    const problem = parseProblem(answer);
    const subject = { repository: this.location, object: key };
    const what = `${operation} ${key || 'the repository'}`;
    const detail = problem.detail ?? `HTTP ${answer.status}`;
    const make = (code: ErrorCode, message: string) => new CofferError(code, message, { subject });
    if (answer.status === 401) return make('E_ACCESS_DENIED', `${this.location} refused the token to ${what}: ${detail} (check --repo-token-file or COFFER_REPO_TOKEN)`);
    if (answer.status === 403) return make('E_ACCESS_DENIED', `${this.location} does not allow this token to ${what}: ${detail}`);
    if (answer.status === 404 && problem.code === 'E_REPO_NOT_FOUND') return make('E_REPO_NOT_FOUND', `${this.location}: ${detail}`);
    if (answer.status === 404 && operation === 'read') return make('E_MISSING_OBJECT', `object ${key} is missing from ${this.location}`);
    if (answer.status === 507) return make('E_NO_SPACE', `no space left to ${what} on ${this.location}: ${detail}`);
    if (answer.status === 429) return make('E_ACCESS_DENIED', `${this.location} refused to ${what}: ${detail} (too many requests)`);
    return make('E_BACKEND_IO', `cannot ${what} on ${this.location}: HTTP ${answer.status}${problem.detail === undefined ? '' : `: ${problem.detail}`}`);
  }
}

/** The fields of an RFC 9457 problem document the client uses (empty when the body is not one). */
function parseProblem(answer: HttpAnswer): { detail?: string; code?: string } {
  const header = answer.headers['coffer-error'];
  const out: { detail?: string; code?: string } = typeof header === 'string' ? { code: header } : {};
  const challenge = /error_description="([^"]{1,300})"/.exec(String(answer.headers['www-authenticate'] ?? ''));
  if (challenge !== null) out.detail = challenge[1] as string; // RFC 6750: also on HEAD answers
  if (!String(answer.headers['content-type'] ?? '').startsWith('application/problem+json')) return out;
  try {
    const parsed = JSON.parse(answer.body.toString('utf8')) as { detail?: unknown; code?: unknown };
    if (typeof parsed.detail === 'string') out.detail = parsed.detail.split('\n')[0]?.slice(0, 500) ?? '';
    if (typeof parsed.code === 'string') out.code = parsed.code;
  } catch {
    // not JSON after all: the status alone speaks
  }
  return out;
}

/** The answer to a batched has: one of true, false or null (not allowed) per key asked. */
function parseHasAnswer(body: Buffer, count: number, location: string): (boolean | null)[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const present = (parsed as { present?: unknown } | undefined)?.present;
  if (!Array.isArray(present) || present.length !== count || !present.every((v) => v === true || v === false || v === null)) {
    throw new CofferError('E_PROTOCOL', `${location} answered an existence check with something that is not ${count} answers`);
  }
  return present as (boolean | null)[];
}

/** One page of a listing, validated (the server is a network peer). */
function parseListPage(body: Buffer, location: string, prefix: string): { entries: BackendEntry[]; cursor: string | null } {
  const bad = () => new CofferError('E_PROTOCOL', `${location} answered a listing of ${prefix || 'everything'} with something that is not a page of keys`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw bad();
  }
  const page = parsed as { entries?: unknown; cursor?: unknown };
  if (!Array.isArray(page.entries) || !(page.cursor === null || typeof page.cursor === 'string')) throw bad();
  const entries: BackendEntry[] = [];
  for (const entry of page.entries as { key?: unknown; size?: unknown }[]) {
    if (typeof entry?.key !== 'string' || !entry.key.startsWith(prefix) || typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0) throw bad();
    try {
      entries.push({ key: checkedKey(entry.key), size: entry.size });
    } catch {
      throw bad();
    }
  }
  return { entries, cursor: page.cursor };
}
