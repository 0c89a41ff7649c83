/**
 * Users and their grants in the state database. Names are unique; a user's password is kept
 * only as a scrypt hash (password.ts). Every method is one statement or one transaction, so
 * concurrent requests cannot leave half a user.
 *
 * One invariant is the store's own: once a user holds Admin on `/`, one always does. Replacing
 * the grants of, or deleting, the last such user is refused with `E_LAST_ADMIN` (409): nobody
 * could grant anything or manage users again, a console that locks everyone out. The check and
 * the change are one transaction that changes first and counts after, under a lock, so two
 * administrators demoting each other at once cannot both succeed: SQLite's write lock (the
 * change's first statement takes it; one connection per process, and Kysely runs its
 * transactions one at a time), and on PostgreSQL an advisory lock taken for the transaction
 * ({@link ADMIN_LOCK_KEY}) — a read-committed count would otherwise miss the other's uncommitted
 * change.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { dialectOf, type StateSchema } from '../state/index.js';
import { ApiError } from '../http/api-error.js';
import type { Grant } from './access.js';
import { hashPassword, MIN_PASSWORD_LENGTH } from './password.js';

/** PostgreSQL's advisory lock key for changes to the administrators on `/`: the bytes of "coffer:a". */
export const ADMIN_LOCK_KEY = 0x636f666665723a61n;

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

  /**
   * Replaces a user's grants; a token of the user keeps only what the new grants still cover
   * (checked per request). E_LAST_ADMIN, and nothing changed, when it would take Admin on `/`
   * from the last user holding it.
   */
  async setGrants(id: string, grants: readonly Grant[]): Promise<void> {
    const at = this.now();
    await this.db.transaction().execute(async (trx) => {
      await this.lockAdmins(trx);
      const before = await trx.deleteFrom('grants').where('user_id', '=', id).returning(['role', 'path']).execute();
      for (const grant of grants) await trx.insertInto('grants').values({ id: randomUUID(), user_id: id, token_id: null, role: grant.role, path: grant.path, created_at: at }).execute();
      await refuseNoAdminLeft(trx, before, 'lose Admin on /');
    });
  }

  /**
   * Deletes a user with its sessions, tokens and grants (cascades). E_LAST_ADMIN, and nothing
   * deleted, when the user is the last holding Admin on `/`.
   */
  async delete(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await this.lockAdmins(trx);
      const before = await trx.deleteFrom('grants').where('user_id', '=', id).returning(['role', 'path']).execute();
      const result = await trx.deleteFrom('users').where('id', '=', id).executeTakeFirst();
      await refuseNoAdminLeft(trx, before, 'be deleted');
      return Number(result.numDeletedRows) > 0;
    });
  }

  /** PostgreSQL: waits for the transaction's advisory lock (SQLite: the change's write lock does it). */
  private async lockAdmins(trx: Transaction<StateSchema>): Promise<void> {
    if (dialectOf(this.db as unknown as Kysely<unknown>) === 'postgres') await sql`SELECT pg_advisory_xact_lock(${sql.raw(ADMIN_LOCK_KEY.toString())})`.execute(trx);
  }

  async grantsOf(userId: string): Promise<Grant[]> {
    const rows = await this.db.selectFrom('grants').select(['role', 'path']).where('user_id', '=', userId).orderBy('path').orderBy('role').execute();
    return rows.map((r) => ({ role: r.role, path: r.path }));
  }
}

const isRootAdmin = (grant: { role: string; path: string }) => grant.role === 'Admin' && grant.path === '/';

/** Throws E_LAST_ADMIN (rolling the transaction back) when the user's change took Admin on `/` from the last user holding it. */
async function refuseNoAdminLeft(trx: Transaction<StateSchema>, grantsBefore: ReadonlyArray<{ role: string; path: string }>, what: string): Promise<void> {
  if (!grantsBefore.some(isRootAdmin)) return;
  const left = await trx
    .selectFrom('grants')
    .select((eb) => eb.fn.count<number>('user_id').distinct().as('n'))
    .where('role', '=', 'Admin')
    .where('path', '=', '/')
    .where('user_id', 'is not', null)
    .executeTakeFirstOrThrow();
  if (Number(left.n) === 0) {
    throw new ApiError('E_LAST_ADMIN', `the last administrator on / cannot ${what}: nobody could manage users or grants any more; give another user Admin on / first`);
  }
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new ApiError('E_VALIDATION', `a password needs at least ${MIN_PASSWORD_LENGTH} characters`);
}
