import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sql } from 'kysely';
import { openStateDatabase } from '../state/index.js';
import { AuditLog } from './index.js';

const dir = await mkdtemp(join(tmpdir(), 'coffer-audit-'));
after(() => rm(dir, { recursive: true, force: true }));

test('the audit log pages newest first, filters, redacts secrets, and the database refuses UPDATE and DELETE', async () => {
  const state = await openStateDatabase({ file: join(dir, 'state.db') });
  try {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const log = new AuditLog(state.db, () => now);
    for (let i = 0; i < 7; i++) {
      now += 1000;
      await log.record({ actor: i % 2 === 0 ? 'user:alice' : 'user:bob', address: '10.0.0.1', action: i === 3 ? 'config.update' : 'auth.login', target: '/x', outcome: 'success', details: { i, smtp: { password: 'hunter2', 'password-file': '/etc/p' } } });
    }
    const first = await log.list({ limit: 3 });
    assert.equal(first.total, 7);
    assert.deepEqual(first.items.map((e) => e.details.i), [6, 5, 4]);
    const second = await log.list({ limit: 3, cursor: first.next as string });
    assert.deepEqual(second.items.map((e) => e.details.i), [3, 2, 1]);
    const last = await log.list({ limit: 3, cursor: second.next as string });
    assert.deepEqual(last.items.map((e) => e.details.i), [0]);
    assert.equal(last.next, null);
    assert.equal((await log.list({ limit: 10, actor: 'user:bob' })).total, 3);
    assert.equal((await log.list({ limit: 10, action: 'config.*' })).total, 1);
    assert.deepEqual(first.items[0]?.details.smtp, { password: '(secret)', 'password-file': '/etc/p' });

    await assert.rejects(sql`UPDATE audit_log SET outcome = 'failure'`.execute(state.db), /append-only/);
    await assert.rejects(sql`DELETE FROM audit_log`.execute(state.db), /append-only/);
    assert.equal((await log.list({ limit: 10 })).total, 7);
  } finally {
    await state.close();
  }
});
