/**
 * API tokens: `coffer_` followed by 32 random bytes in base64url. The secret is returned once,
 * at creation; the database keeps its SHA-256 (a random 256-bit secret needs no slow hash).
 * A token acts for its owner but only with its own grants, each within the owner's grants at
 * creation and again at every use (an owner who loses a right takes it from the tokens too).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { StateSchema } from '../state/index.js';
import type { Grant } from './access.js';
import { sha256 } from './session-store.js';

export const TOKEN_PREFIX = 'coffer_';

export interface ApiToken {
  id: string;
  userId: string;
  name: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  grants: Grant[];
}

export class TokenStore {
  constructor(
    private readonly db: Kysely<StateSchema>,
    private readonly now: () => number = Date.now,
  ) {}

  async create(userId: string, name: string, options: { grants: readonly Grant[]; expiresAt: number | null }): Promise<{ token: ApiToken; secret: string }> {
    const secret = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const id = randomUUID();
    const at = this.now();
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('api_tokens').values({ id, user_id: userId, name, secret_hash: sha256(secret), created_at: at, expires_at: options.expiresAt, last_used_at: null }).execute();
      for (const grant of options.grants) await trx.insertInto('grants').values({ id: randomUUID(), user_id: null, token_id: id, role: grant.role, path: grant.path, created_at: at }).execute();
    });
    return { token: (await this.byId(id)) as ApiToken, secret };
  }

  /** The live (unexpired) token a secret names, recording its use; undefined otherwise. */
  async authenticate(secret: string): Promise<ApiToken | 'expired' | undefined> {
    if (!secret.startsWith(TOKEN_PREFIX)) return undefined;
    const row = await this.db.selectFrom('api_tokens').select(['id', 'expires_at']).where('secret_hash', '=', sha256(secret)).executeTakeFirst();
    if (row === undefined) return undefined;
    const now = this.now();
    if (row.expires_at !== null && Number(row.expires_at) <= now) return 'expired';
    await this.db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
    return this.byId(row.id);
  }

  async byId(id: string): Promise<ApiToken | undefined> {
    const row = await this.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) return undefined;
    const grants = await this.db.selectFrom('grants').select(['role', 'path']).where('token_id', '=', id).orderBy('path').orderBy('role').execute();
    return {
      id: row.id,
      userId: row.user_id,
      name: row.name,
      createdAt: Number(row.created_at),
      expiresAt: row.expires_at === null ? null : Number(row.expires_at),
      lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
      grants,
    };
  }

  /** A page of tokens, of one user or of all. */
  async list(options: { userId?: string; offset: number; limit: number }): Promise<{ items: ApiToken[]; total: number }> {
    let query = this.db.selectFrom('api_tokens');
    if (options.userId !== undefined) query = query.where('user_id', '=', options.userId);
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const rows = await query.select('id').orderBy('created_at').orderBy('id').limit(options.limit).offset(options.offset).execute();
    const items: ApiToken[] = [];
    for (const row of rows) items.push((await this.byId(row.id)) as ApiToken);
    return { items, total };
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('api_tokens').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
