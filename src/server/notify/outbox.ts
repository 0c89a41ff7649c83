/**
 * The persistent outbox (`notify_outbox`) and the delivery log (`notify_deliveries`).
 *
 * A message is queued once per target, already rendered, in the same database as everything
 * else, so it survives a restart. Delivery is at least once: a server killed while a mail is
 * being handed over sends it again at start. After a failed attempt n the row waits
 * initial × 2^(n-1) (at most max) and is tried again, until the target's attempts run out;
 * then it is `failed`, with the last error, and stays as the record.
 */
import type { Kysely, Selectable } from 'kysely';
import type { StateSchema } from '../state/index.js';
import type { DeliveryRetryPolicy } from './notification-config.js';
import type { Message } from './render-message.js';

type Db = Kysely<StateSchema>;

/** A queued message as delivery sees it. */
export interface OutboxEntry {
  id: number;
  rule: string;
  target: string;
  kind: 'event' | 'summary';
  message: Message;
  attempts: number;
  createdAt: number;
}

/** One attempt in the delivery log. */
export interface DeliveryRecord {
  outboxId: number;
  target: string;
  rule: string;
  subject: string;
  at: number;
  attempt: number;
  outcome: 'sent' | 'failed';
  error?: string;
  durationMs: number;
}

export interface EnqueueRequest {
  rule: string;
  target: string;
  kind: 'event' | 'summary';
  message: Message;
  /** Identical keys inside `dedupeMs` are queued once (0: never deduplicated). */
  dedupeKey: string;
  dedupeMs: number;
  now: number;
}

/** Queues a message; returns its id, or undefined when an identical one is inside the dedupe window. */
export async function enqueue(db: Db, request: EnqueueRequest): Promise<number | undefined> {
  return db.transaction().execute(async (trx) => {
    if (request.dedupeMs > 0) {
      const twin = await trx
        .selectFrom('notify_outbox')
        .select('id')
        .where('dedupe_key', '=', request.dedupeKey)
        .where('created_at', '>', request.now - request.dedupeMs)
        .executeTakeFirst();
      if (twin !== undefined) return undefined;
    }
    const { id } = await trx
      .insertInto('notify_outbox')
      .values({
        created_at: request.now,
        rule: request.rule,
        target: request.target,
        kind: request.kind,
        dedupe_key: request.dedupeKey,
        message: JSON.stringify(request.message),
        status: 'pending',
        attempts: 0,
        next_attempt_at: request.now,
        last_error: null,
        done_at: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return Number(id);
  });
}

/** Pending messages whose next attempt is due at `now`, oldest first. */
export async function dueEntries(db: Db, now: number, limit = 100): Promise<OutboxEntry[]> {
  const rows = await db
    .selectFrom('notify_outbox')
    .selectAll()
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .orderBy('next_attempt_at')
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map(toEntry);
}

/** When the next pending message is due, or undefined when none is pending. */
export async function nextDueAt(db: Db): Promise<number | undefined> {
  const row = await db
    .selectFrom('notify_outbox')
    .select((eb) => eb.fn.min('next_attempt_at').as('due'))
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return row?.due === null || row?.due === undefined ? undefined : Number(row.due);
}

/** The wait after failed attempt `attempt` (1-based). */
export function backoffMs(policy: DeliveryRetryPolicy, attempt: number): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * Records an attempt's outcome: the log row, and the entry's new state (sent; failed for good
 * when `policy.attempts` are used up; else pending again after the backoff).
 */
export async function recordAttempt(
  db: Db,
  entry: OutboxEntry,
  outcome: { error?: string; durationMs: number; now: number; policy: DeliveryRetryPolicy },
): Promise<'sent' | 'retry' | 'failed'> {
  const { policy } = outcome;
  const attempt = entry.attempts + 1;
  const sent = outcome.error === undefined;
  const state = sent ? 'sent' : attempt >= policy.attempts ? 'failed' : 'retry';
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('notify_deliveries')
      .values({
        outbox_id: entry.id,
        target: entry.target,
        at: outcome.now,
        attempt,
        outcome: sent ? 'sent' : 'failed',
        error: outcome.error ?? null,
        duration_ms: Math.round(outcome.durationMs),
      })
      .execute();
    await trx
      .updateTable('notify_outbox')
      .set({
        attempts: attempt,
        status: state === 'retry' ? 'pending' : state,
        next_attempt_at: state === 'retry' ? outcome.now + backoffMs(policy, attempt) : outcome.now,
        last_error: outcome.error ?? null,
        done_at: state === 'retry' ? null : outcome.now,
      })
      .where('id', '=', entry.id)
      .execute();
  });
  return state;
}

/**
 * Makes every pending message of `target` due now: called when a message to it got through,
 * so a recovered target receives its backlog at once, not at each message's backoff.
 */
export async function releaseTarget(db: Db, target: string, now: number): Promise<void> {
  await db.updateTable('notify_outbox').set({ next_attempt_at: now }).where('status', '=', 'pending').where('target', '=', target).where('next_attempt_at', '>', now).execute();
}

/** The delivery log, newest first. */
export async function deliveryLog(db: Db, options: { limit?: number; offset?: number } = {}): Promise<DeliveryRecord[]> {
  const rows = await db
    .selectFrom('notify_deliveries as d')
    .innerJoin('notify_outbox as o', 'o.id', 'd.outbox_id')
    .select(['d.outbox_id', 'd.target', 'o.rule', 'o.message', 'd.at', 'd.attempt', 'd.outcome', 'd.error', 'd.duration_ms'])
    .orderBy('d.id', 'desc')
    .limit(options.limit ?? 100)
    .offset(options.offset ?? 0)
    .execute();
  return rows.map((r) => ({
    outboxId: Number(r.outbox_id),
    target: r.target,
    rule: r.rule,
    subject: (JSON.parse(r.message) as Message).subject,
    at: Number(r.at),
    attempt: Number(r.attempt),
    outcome: r.outcome as 'sent' | 'failed',
    ...(r.error === null ? {} : { error: r.error }),
    durationMs: Number(r.duration_ms),
  }));
}

/** Delivery attempts counted by target and outcome (for `/metrics`), ordered by both. */
export async function deliveryCounts(db: Db): Promise<{ target: string; outcome: string; count: number }[]> {
  const rows = await db
    .selectFrom('notify_deliveries')
    .select(['target', 'outcome', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy(['target', 'outcome'])
    .orderBy('target')
    .orderBy('outcome') // without it the order is the engine's: SQLite's and PostgreSQL's differ
    .execute();
  return rows.map((r) => ({ target: r.target, outcome: r.outcome, count: Number(r.count) }));
}

/** Deletes finished entries (and their log) older than `before`. */
export async function pruneOutbox(db: Db, before: number): Promise<void> {
  await db.deleteFrom('notify_outbox').where('status', '!=', 'pending').where('created_at', '<', before).execute();
}

function toEntry(row: Selectable<StateSchema['notify_outbox']>): OutboxEntry {
  return {
    id: Number(row.id),
    rule: row.rule,
    target: row.target,
    kind: row.kind as 'event' | 'summary',
    message: JSON.parse(row.message) as Message,
    attempts: Number(row.attempts),
    createdAt: Number(row.created_at),
  };
}
