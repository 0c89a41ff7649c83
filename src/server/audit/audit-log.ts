/**
 * The audit log: who did what, to what, when, from where, and how it ended. Append-only: this
 * class has no method that changes or removes an entry, and the database refuses UPDATE and
 * DELETE on the table (migration 3). Details pass through the secret redaction first, so a
 * passphrase or password that reaches a caller's details is never stored.
 */
import type { Kysely } from 'kysely';
import { redactValue } from '../config/index.js';
import type { StateSchema } from '../state/index.js';
import { auditId } from './audit-id.js';

export type AuditOutcome = 'success' | 'failure' | 'denied' | 'pending';

export interface AuditEvent {
  /** `user:NAME`, `token:ID (user NAME)`, `anonymous`, or `system`. */
  actor: string;
  /** The client's address (`-` for the server itself). */
  address: string;
  /** A dotted verb such as `auth.login`, `config.update`, `user.delete`. */
  action: string;
  /** The object: `/users/alice`, `/config`, `/repositories/main/snapshots/ab12…`. */
  target: string;
  outcome: AuditOutcome;
  details?: Record<string, unknown>;
}

export interface AuditEntry extends Required<AuditEvent> {
  id: string;
  at: number;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
  target?: string;
  outcome?: string;
  /** Entries at or after this time (ms). */
  since?: number;
  /** Entries before this time (ms). */
  until?: number;
  /** Continue after this entry id (the previous page's `next`), newest first. */
  cursor?: string;
  limit: number;
}

export class AuditLog {
  constructor(
    private readonly db: Kysely<StateSchema>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Appends one entry (committed before it returns: synchronous=FULL). */
  async record(event: AuditEvent): Promise<AuditEntry> {
    const at = this.now();
    const entry: AuditEntry = { id: auditId(at), at, ...event, details: redactValue(event.details ?? {}) };
    await this.db
      .insertInto('audit_log')
      .values({ id: entry.id, at, actor: entry.actor, address: entry.address, action: entry.action, target: entry.target, outcome: entry.outcome, details: JSON.stringify(entry.details) })
      .execute();
    return entry;
  }

  /** A page of entries, newest first, with the total matching the filters and the cursor of the next page. */
  async list(query: AuditQuery): Promise<{ items: AuditEntry[]; total: number; next: string | null }> {
    let base = this.db.selectFrom('audit_log');
    if (query.actor !== undefined) base = base.where('actor', '=', query.actor);
    if (query.action !== undefined) base = query.action.endsWith('.*') ? base.where('action', 'like', `${query.action.slice(0, -1)}%`) : base.where('action', '=', query.action);
    if (query.target !== undefined) base = base.where('target', '=', query.target);
    if (query.outcome !== undefined) base = base.where('outcome', '=', query.outcome);
    if (query.since !== undefined) base = base.where('at', '>=', query.since);
    if (query.until !== undefined) base = base.where('at', '<', query.until);
    const total = Number((await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    let page = base.selectAll().orderBy('id', 'desc').limit(query.limit + 1);
    if (query.cursor !== undefined) page = page.where('id', '<', query.cursor);
    const rows = await page.execute();
    const items = rows.slice(0, query.limit).map((r) => ({
      id: r.id,
      at: Number(r.at),
      actor: r.actor,
      address: r.address,
      action: r.action,
      target: r.target,
      outcome: r.outcome as AuditOutcome,
      details: JSON.parse(r.details) as Record<string, unknown>,
    }));
    return { items, total, next: rows.length > query.limit ? (items.at(-1)?.id ?? null) : null };
  }
}
