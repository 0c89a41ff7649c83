/**
 * The connection pool behind a PostgreSQL state database (`pg`), and how values come back.
 *
 * - `bigint` (int8) columns, `count(*)` and `bigserial` ids come back as JavaScript numbers,
 *   not pg's default strings, so that rows read the same as from SQLite. Coffer stores only
 *   values below 2^53 there (ms since the epoch, byte counts up to 8 PiB, ids); a larger one
 *   fails the query rather than being rounded. `numeric` (what `sum(bigint)` returns) stays a
 *   string: wrap it in `Number()` (docs/state-database.md).
 * - Every connection is tagged `application_name=coffer` (visible in pg_stat_activity) and
 *   carries a statement timeout, so no query (nor a wait for a lock) hangs forever; the client
 *   gives up 5 s after it too, for a link that went dead without a reset.
 * - Every connection carries an idle-in-transaction timeout: a process cut off from the
 *   database in the middle of a transaction (a partition, a paused VM) would otherwise keep
 *   that transaction's locks — the task queue's dispatch lock, the rows it updated — until the
 *   server noticed the dead link (TCP keepalive: hours), and every other process would wait on
 *   them. PostgreSQL ends such a session itself after `idleInTransactionMs`. Coffer's
 *   transactions send their statements back to back, so a live process never comes near it.
 * - An idle connection that the server drops (restart, failover) is discarded quietly; the
 *   next query opens a new one, or fails with the server's error.
 */
import pg from 'pg';

/** Pool settings; see {@link POOL_DEFAULTS}. */
export interface PoolSettings {
  /** Most connections this process opens. */
  poolSize?: number;
  /** The longest one statement may run (and wait for locks), ms. */
  statementTimeoutMs?: number;
  /** The longest a new connection may take to establish, ms. */
  connectTimeoutMs?: number;
  /** The longest a session may sit inside a transaction without sending a statement before the server ends it (and its locks), ms. */
  idleInTransactionMs?: number;
}

/**
 * Defaults: 10 connections (a server's API and scheduler rarely have more queries in flight;
 * PostgreSQL's default max_connections of 100 then allows ~10 Coffer processes), 30 s per
 * statement (the slowest expected query is a paged list; a migration step is a few DDL
 * statements), 10 s to connect, 10 s idle inside a transaction (the gaps between a
 * transaction's statements are the JavaScript between them: milliseconds; a worker passes
 * its lease when shorter, so that a worker cut off mid-hand-out holds the others up no longer
 * than it holds its tasks).
 */
export const POOL_DEFAULTS: Required<PoolSettings> = { poolSize: 10, statementTimeoutMs: 30_000, connectTimeoutMs: 10_000, idleInTransactionMs: 10_000 };

const INT8_OID = 20;

function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`the state database returned ${text}, beyond what Coffer stores in a bigint column (2^53)`);
  return value;
}

/** pg's own parsers, except int8 → number. Per pool, so other pg users in the process are untouched. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** A pool for `url` (not connected yet). */
export function createPostgresPool(url: string, settings: PoolSettings = {}): pg.Pool {
  const s = { ...POOL_DEFAULTS, ...settings };
  const pool = new pg.Pool({
    connectionString: url,
    max: s.poolSize,
    statement_timeout: s.statementTimeoutMs,
    idle_in_transaction_session_timeout: s.idleInTransactionMs,
    connectionTimeoutMillis: s.connectTimeoutMs,
    // The statement timeout is the server's: over a dead link (a partition) the server never
    // sees the query, so the client gives up a little later on its own.
    query_timeout: s.statementTimeoutMs + 5000,
    application_name: 'coffer',
    keepAlive: true,
    types: TYPES,
  });
  pool.on('error', () => {
    // An idle client lost its connection: pg removes it from the pool; the next query reports.
  });
  // A client checked out of the pool has no listener of pg-pool's: a connection the server ends
  // between two statements (a restart's "terminating connection due to administrator command"
  // while a transaction's JavaScript runs) would be an unhandled 'error' event that ends the
  // process. Its next query reports the loss instead, and the pool drops it at release.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  return pool;
}
