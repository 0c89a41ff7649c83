/**
 * Console sessions. The cookie carries 32 random bytes (base64url); the database keeps only
 * their SHA-256, so a copy of the database opens no session. Each session has its own CSRF
 * token, which the console sends back in `X-CSRF-Token` on every unsafe request.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { StateSchema } from '../state/index.js';

export interface Session {
  userId: string;
  csrfToken: string;
  expiresAt: number;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class SessionStore {
  constructor(
    private readonly db: Kysely<StateSchema>,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new session; returns the cookie value (shown once) and the CSRF token. */
  async create(userId: string, address: string, lifetimeMs: number): Promise<{ cookie: string; csrfToken: string; expiresAt: number }> {
    const cookie = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(24).toString('base64url');
    const at = this.now();
    const expiresAt = at + lifetimeMs;
    await this.db.insertInto('sessions').values({ id_hash: sha256(cookie), user_id: userId, csrf_token: csrfToken, address, created_at: at, expires_at: expiresAt }).execute();
    await this.db.deleteFrom('sessions').where('expires_at', '<', at).execute();
    return { cookie, csrfToken, expiresAt };
  }

  /** The live session a cookie value opens, or undefined. */
  async lookup(cookie: string): Promise<Session | undefined> {
    const row = await this.db.selectFrom('sessions').selectAll().where('id_hash', '=', sha256(cookie)).executeTakeFirst();
    if (row === undefined || Number(row.expires_at) <= this.now()) return undefined;
    return { userId: row.user_id, csrfToken: row.csrf_token, expiresAt: Number(row.expires_at) };
  }

  async delete(cookie: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id_hash', '=', sha256(cookie)).execute();
  }

  /** Ends every session of a user (after a password change), except `keep`. */
  async deleteAllOf(userId: string, keep?: string): Promise<void> {
    let query = this.db.deleteFrom('sessions').where('user_id', '=', userId);
    if (keep !== undefined) query = query.where('id_hash', '!=', sha256(keep));
    await query.execute();
  }
}
