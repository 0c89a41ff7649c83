/**
 * The user store's one invariant (a user with Admin on `/` always remains) on both engines:
 * SQLite as a single server keeps it, and on a real PostgreSQL two servers on their own pools
 * (a cluster sharing the state database, #10) whose administrators demote or delete each other
 * at the same moment never leave none — a read-committed count alone would let both through.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startPostgres, type TestPostgres } from '../../testing/index.js';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import type { Grant } from './access.js';
import { UserStore } from './user-store.js';

const ROOT_ADMIN: Grant[] = [{ role: 'Admin', path: '/' }];
const OPERATOR: Grant[] = [{ role: 'Operator', path: '/' }];
let postgres: TestPostgres;
const dir = await mkdtemp(join(tmpdir(), 'coffer-user-store-'));
const opened: StateDatabase[] = [];

before(async () => {
  postgres = await startPostgres();
});
after(async () => {
  for (const state of opened) await state.close();
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function open(options: Parameters<typeof openStateDatabase>[0]): Promise<UserStore> {
  const state = await openStateDatabase(options);
  opened.push(state);
  return new UserStore(state.db);
}

async function rootAdmins(users: UserStore): Promise<string[]> {
  const all = await users.list({ offset: 0, limit: 500 });
  return all.items.filter((u) => u.grants.some((g) => g.role === 'Admin' && g.path === '/')).map((u) => u.name);
}

function isLastAdmin(error: unknown): boolean {
  assert.equal((error as { code?: unknown }).code, 'E_LAST_ADMIN', String(error));
  return true;
}

test('SQLite: the last administrator on / is neither demoted nor deleted; anyone else is', async () => {
  const users = await open({ file: join(dir, 'state.db') });
  const alice = await users.create('alice', 'alice password 1', { grants: ROOT_ADMIN, mustChangePassword: false });
  const bob = await users.create('bob', 'bob password 12', { grants: ROOT_ADMIN, mustChangePassword: false });
  const carol = await users.create('carol', 'carol password 1', { grants: [], mustChangePassword: false });
  await users.setGrants(carol.id, OPERATOR); // no administrator involved
  await users.setGrants(bob.id, OPERATOR); // alice remains
  await assert.rejects(users.setGrants(alice.id, [{ role: 'Admin', path: '/jobs/nightly' }]), isLastAdmin);
  await assert.rejects(users.delete(alice.id), isLastAdmin);
  assert.deepEqual(await users.grantsOf(alice.id), ROOT_ADMIN, 'unchanged: the refusal rolled the change back');
  assert.ok(await users.byId(alice.id));
  assert.equal(await users.delete(bob.id), true);
  assert.deepEqual(await rootAdmins(users), ['alice']);
});

test('PostgreSQL, two servers: administrators demoting or deleting each other at once leave exactly one', async () => {
  const url = await postgres.createDatabase();
  const here = await open({ url, poolSize: 2 });
  const there = await open({ url, poolSize: 2 });
  for (let round = 0; round < 20; round++) {
    const a = await here.create(`a${round}`, 'a password here', { grants: ROOT_ADMIN, mustChangePassword: false });
    const b = await there.create(`b${round}`, 'b password here', { grants: ROOT_ADMIN, mustChangePassword: false });
    // The previous round's survivor steps down, so a and b are the only two administrators.
    for (const name of await rootAdmins(here)) {
      if (name !== a.name && name !== b.name) await here.delete(((await here.byName(name)) as { id: string }).id);
    }
    const outcomes = await Promise.allSettled(
      round % 2 === 0 ? [here.setGrants(b.id, OPERATOR), there.setGrants(a.id, OPERATOR)] : [here.delete(b.id), there.delete(a.id)],
    );
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, `round ${round}: ${JSON.stringify(outcomes)}`);
    for (const o of outcomes) if (o.status === 'rejected') isLastAdmin(o.reason);
    assert.equal((await rootAdmins(there)).length, 1, `round ${round}`);
  }
});
