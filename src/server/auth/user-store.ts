/**
 * Users and their grants in the state database. Names are unique; a user's password is kept
 * only as a scrypt hash (password.ts). Every method is one statement or one transaction, so
 * concurrent requests cannot leave half a user.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { StateSchema } from '../state/index.js';
import { ApiError } from '../http/api-error.js';
import type { Grant } from './access.js';
import { hashPassword, MIN_PASSWORD_LENGTH } from './password.js';

export interface User {
  id: string;
  name: string;
  mustChangePassword: boolean;
  createdAt: number;
  grants: Grant[];
}

export class UserStore {
  constructor(
    private readonly db: Kysely<StateSchema>,
    private readonly now: () => number = Date.now,
  ) {}

  async count(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Creates a user with grants; E_CONFLICT when the name is taken. */
  async create(name: string, password: string, options: { grants: Grant[]; mustChangePassword: boolean }): Promise<User> {
    checkPassword(password);
    const id = randomUUID();
    const at = this.now();
    const hash = await hashPassword(password);
    await this.db.transaction().execute(async (trx) => {
      const taken = await trx.selectFrom('users').select('id').where('name', '=', name).executeTakeFirst();
      if (taken !== undefined) throw new ApiError('E_CONFLICT', `a user named ${name} exists already`);
      await trx.insertInto('users').values({ id, name, password_hash: hash, must_change_password: options.mustChangePassword ? 1 : 0, created_at: at, password_changed_at: at }).execute();
      for (const grant of options.grants) {
        await trx.insertInto('grants').values({ id: randomUUID(), user_id: id, token_id: null, role: grant.role, path: grant.path, created_at: at }).execute();
      }
    });
    return (await this.byId(id)) as User;
  }

  async byId(id: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : { id: row.id, name: row.name, mustChangePassword: row.must_change_password === 1, createdAt: Number(row.created_at), grants: await this.grantsOf(row.id) };
  }

  /** The user and its password hash, for a login. */
  async credentials(name: string): Promise<{ id: string; hash: string } | undefined> {
    const row = await this.db.selectFrom('users').select(['id', 'password_hash']).where('name', '=', name).executeTakeFirst();
    return row === undefined ? undefined : { id: row.id, hash: row.password_hash };
  }

  async byName(name: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').select('id').where('name', '=', name).executeTakeFirst();
    return row === undefined ? undefined : this.byId(row.id);
  }

  /** A page of users by name, optionally only names containing `search`. */
  async list(options: { offset: number; limit: number; search?: string }): Promise<{ items: User[]; total: number }> {
    let query = this.db.selectFrom('users');
    if (options.search !== undefined) {
      // Case-insensitive on both engines (SQLite's LIKE is, PostgreSQL's is not), with an
      // explicit escape character so a searched `%` or `_` is literal.
      const pattern = `%${options.search.replace(/[%_\\]/g, '\\$&')}%`;
      query = query.where(sql<boolean>`lower(name) like lower(${pattern}) escape '\\'`);
    }
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const rows = await query.select('id').orderBy('name').limit(options.limit).offset(options.offset).execute();
    const items: User[] = [];
    for (const row of rows) items.push((await this.byId(row.id)) as User);
    return { items, total };
  }

  async setPassword(id: string, password: string, options: { mustChange: boolean }): Promise<void> {
    checkPassword(password);
    const hash = await hashPassword(password);
    await this.db.updateTable('users').set({ password_hash: hash, must_change_password: options.mustChange ? 1 : 0, password_changed_at: this.now() }).where('id', '=', id).execute();
  }

  /** Replaces a user's grants; a token of the user keeps only what the new grants still cover (checked per request). */
  async setGrants(id: string, grants: readonly Grant[]): Promise<void> {
    const at = this.now();
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('grants').where('user_id', '=', id).execute();
      for (const grant of grants) await trx.insertInto('grants').values({ id: randomUUID(), user_id: id, token_id: null, role: grant.role, path: grant.path, created_at: at }).execute();
    });
  }

  /** Deletes a user with its sessions, tokens and grants (cascades). */
  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async grantsOf(userId: string): Promise<Grant[]> {
    const rows = await this.db.selectFrom('grants').select(['role', 'path']).where('user_id', '=', userId).orderBy('path').orderBy('role').execute();
    return rows.map((r) => ({ role: r.role, path: r.path }));
  }
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new ApiError('E_VALIDATION', `a password needs at least ${MIN_PASSWORD_LENGTH} characters`);
}
