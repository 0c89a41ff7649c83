import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ListSessions } from './list-sessions.js';

async function* entries(n: number) {
  for (let i = 0; i < n; i++) yield { key: `k/${i}`, size: i };
}

test('pages follow their cursors; a retried page is answered again; a foreign, stale or expired cursor is gone', async () => {
  let now = 0;
  const sessions = new ListSessions(1000, () => now);
  const first = await sessions.start('web01', entries(5), 2);
  assert.deepEqual(first.entries.map((e) => e.key), ['k/0', 'k/1']);
  const cursor = first.cursor as string;
  assert.equal(await sessions.continue('web02', cursor, 2), 'gone');
  const second = await sessions.continue('web01', cursor, 2);
  assert.notEqual(second, 'gone');
  assert.deepEqual(await sessions.continue('web01', cursor, 2), second, 'a retry of the same request');
  const third = await sessions.continue('web01', (second as { cursor: string }).cursor, 2);
  assert.deepEqual(third, { entries: [{ key: 'k/4', size: 4 }], cursor: null });
  const again = await sessions.start('web01', entries(5), 2);
  now += 2000;
  (sessions as unknown as { sweep(): void }).sweep();
  assert.equal(await sessions.continue('web01', again.cursor as string, 2), 'gone');
  assert.equal(await sessions.continue('web01', 'not-a-cursor', 2), 'gone');
  sessions.close();
});
