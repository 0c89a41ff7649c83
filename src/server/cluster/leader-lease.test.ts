import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeTempDir } from '../../testing/index.js';
import { openStateDatabase } from '../state/index.js';
import { currentLeader, LeaderLease, tryLead } from './leader-lease.js';

const dir = await makeTempDir('coffer-leader-lease');
const state = await openStateDatabase({ file: join(dir.path, 'state.db') });
after(async () => {
  await state.close();
  await dir.remove();
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('tryLead: one holder at a time; it renews; another takes it only once it expired', async () => {
  assert.equal(await tryLead(state.db, 'r1', 'a', 200), true);
  assert.equal(await tryLead(state.db, 'r1', 'b', 200), false);
  assert.equal(await tryLead(state.db, 'r1', 'a', 200), true, 'renewed');
  assert.equal(await currentLeader(state.db, 'r1'), 'a');
  await sleep(250);
  assert.equal(await currentLeader(state.db, 'r1'), undefined, 'expired');
  assert.equal(await tryLead(state.db, 'r1', 'b', 200), true);
  assert.equal(await tryLead(state.db, 'r1', 'a', 200), false);
  assert.equal(await tryLead(state.db, 'r2', 'a', 200), true, 'roles are independent');
});

test('LeaderLease: the first is elected, the second waits; a stop steps down, frees the row, and the second is elected at its next try', async () => {
  const said: string[] = [];
  const make = (name: string) => new LeaderLease(state.db, { role: 'r3', holder: name, leaseMs: 60_000, onElected: () => void said.push(`${name} elected`), onDeposed: () => void said.push(`${name} deposed`) });
  const a = make('a');
  const b = make('b');
  await a.tryOnce();
  await b.tryOnce();
  assert.deepEqual(said, ['a elected']);
  assert.equal(a.leading, true);
  assert.equal(b.leading, false);
  await a.stop();
  assert.equal(await currentLeader(state.db, 'r3'), undefined);
  await b.tryOnce();
  assert.deepEqual(said, ['a elected', 'a deposed', 'b elected']);
  await b.stop();
});

test('LeaderLease: a leader whose row was taken (it was too slow) steps down at its next try', async () => {
  const said: string[] = [];
  const a = new LeaderLease(state.db, { role: 'r4', holder: 'a', leaseMs: 100, onElected: () => void said.push('elected'), onDeposed: () => void said.push('deposed') });
  await a.tryOnce();
  await sleep(150);
  assert.equal(await tryLead(state.db, 'r4', 'b', 60_000), true);
  await a.tryOnce();
  assert.deepEqual(said, ['elected', 'deposed']);
  assert.equal(a.leading, false);
  await a.stop();
});
