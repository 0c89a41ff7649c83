/**
 * Keyset paging of the tasks and runs lists on a real SQLite state database: every row exactly
 * once while new ones are added between pages (with `offset` a new task pushes one onto the
 * next page twice), and a run's counts by outcome count a retried task as its retry.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeTempDir } from '../../testing/index.js';
import { openStateDatabase } from '../state/index.js';
import { TaskStore } from './task-store.js';

const dir = await makeTempDir('coffer-task-paging');
const state = await openStateDatabase({ file: join(dir.path, 'state.db') });
after(async () => {
  await state.close();
  await dir.remove();
});
const store = new TaskStore(state.db);

async function addRun(id: string, at: number, vms: number): Promise<void> {
  await state.db.insertInto('runs').values({ id, job: 'nightly', reason: 'schedule', status: 'succeeded', owner: 't', firing: at, window_end: null, cancel_at_window_end: 0, vms: JSON.stringify(Array.from({ length: vms }, (_, i) => `vm${i}`)), detail: null, created_at: at }).execute();
}

test('task pages by cursor hold every task exactly once while newer tasks are added; offset pages do not', async () => {
  // Several tasks share a created_at (one run's tasks are written in the same millisecond): the id breaks the tie.
  for (let i = 0; i < 120; i++) await store.insertTask({ id: `t${String(i).padStart(4, '0')}`, runId: null, kind: 'backup', owner: 't', vm: `vm${i % 5}`, spec: {}, attempt: 1 }, 1_000_000 + Math.floor(i / 4));
  const original = new Set((await store.listTasks({ limit: 1000 })).items.map((t) => t.id));
  const byCursor: string[] = [];
  const byOffset: string[] = [];
  let cursor: string | undefined;
  let offset = 0;
  for (let round = 0; round < 100; round++) {
    const page = await store.listTasks({ limit: 11, ...(cursor === undefined ? {} : { cursor }) });
    const old = await store.listTasks({ limit: 11, after: offset });
    byCursor.push(...page.items.map((t) => t.id));
    byOffset.push(...old.items.map((t) => t.id));
    if (page.cursor === undefined) break;
    cursor = page.cursor;
    offset += 11;
    await store.insertTask({ id: `n${String(round).padStart(4, '0')}`, runId: null, kind: 'backup', owner: 't', spec: {}, attempt: 1 }, 2_000_000 + round);
  }
  assert.equal(new Set(byCursor).size, byCursor.length, 'no task twice');
  assert.deepEqual(new Set(byCursor), original, 'every task that was there at the start, and only those');
  assert.ok(new Set(byOffset).size < byOffset.length, 'offset paging repeats rows (what cursors fix)');
  // Filters combine with the cursor.
  const vm2: string[] = [];
  cursor = undefined;
  for (;;) {
    const page = await store.listTasks({ vm: 'vm2', limit: 7, ...(cursor === undefined ? {} : { cursor }) });
    vm2.push(...page.items.map((t) => t.id));
    if (page.cursor === undefined) break;
    cursor = page.cursor;
  }
  assert.equal(vm2.length, 24);
});

test('run pages by cursor; a run\'s outcomes count each VM once, a retried task as its retry', async () => {
  for (let i = 0; i < 30; i++) await addRun(`r${String(i).padStart(3, '0')}`, 5_000_000 + Math.floor(i / 3), 600);
  const seen: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await store.listRuns({ limit: 4, ...(cursor === undefined ? {} : { cursor }) });
    seen.push(...page.items.map((r) => r.id));
    if (page.cursor === undefined) break;
    cursor = page.cursor;
  }
  assert.equal(seen.length, 30);
  assert.equal(new Set(seen).size, 30);
  await store.insertTask({ id: 'a1', runId: 'r000', kind: 'backup', owner: 't', vm: 'vm0', spec: {}, attempt: 1 }, 5_000_001);
  await store.insertTask({ id: 'a2', runId: 'r000', kind: 'backup', owner: 't', vm: 'vm1', spec: {}, attempt: 1 }, 5_000_001);
  await store.insertTask({ id: 'a3', runId: 'r000', kind: 'backup', owner: 't', vm: 'vm2', spec: {}, attempt: 1 }, 5_000_001);
  await store.finish('a1', { status: 'succeeded', now: 5_000_002 });
  await store.finish('a2', { status: 'failed', now: 5_000_002, error: { code: 'E_IO', message: 'x' } });
  await store.finish('a3', { status: 'failed', now: 5_000_002, error: { code: 'E_IO', message: 'x' } });
  await store.insertTask({ id: 'a3-retry', runId: 'r000', kind: 'backup', owner: 't', vm: 'vm2', spec: {}, attempt: 2, retryOf: 'a3' }, 5_000_003);
  await store.finish('a3-retry', { status: 'succeeded', now: 5_000_004 });
  const outcomes = await store.taskOutcomes(['r000', 'r001']);
  assert.deepEqual(outcomes.get('r000'), { succeeded: 2, failed: 1 });
  assert.deepEqual(outcomes.get('r001'), {}, 'a run without tasks');
  // Counted once for an ended run, then read from its row.
  const stored = await state.db.selectFrom('runs').select('outcomes').where('id', '=', 'r000').executeTakeFirstOrThrow();
  assert.deepEqual(JSON.parse(stored.outcomes ?? 'null'), { succeeded: 2, failed: 1 });
});
