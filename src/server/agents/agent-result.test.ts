/** An agent's end is untrusted input: the table of what is accepted and what is refused, and why. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAgentEnd } from './agent-result.js';

const good = { snapshot: 'b'.repeat(64), parent: null, snapshotTime: '2026-11-26T07:00:00.000Z', entries: 4, bytesLogical: 1, bytesRead: 1, bytesNew: 1, bytesStored: 1, durationMs: 5, warnings: [] };

test('parseAgentEnd accepts a result or an error, and names what is wrong otherwise', () => {
  const cases: [unknown, RegExp | 'ok'][] = [
    [{ result: good }, 'ok'],
    [{ result: { ...good, parent: 'c'.repeat(64), warnings: ['/a: vanished'] } }, 'ok'],
    [{ error: { code: 'E_INTERRUPTED', message: 'interrupted by SIGTERM' } }, 'ok'],
    [null, /not a JSON object/],
    [{}, /expected \{result\} or \{error\}/],
    [{ error: { code: 'boom', message: 'x' } }, /E_…/],
    [{ error: { code: 'E_X', message: 'two\u0001lines' } }, /E_…/],
    [{ result: { ...good, snapshot: '../etc' } }, /result\.snapshot/],
    [{ result: { ...good, parent: 'x' } }, /result\.parent/],
    [{ result: { ...good, snapshotTime: 'yesterday' } }, /snapshotTime/],
    [{ result: { ...good, bytesNew: -1 } }, /result\.bytesNew/],
    [{ result: { ...good, entries: 1.5 } }, /result\.entries/],
    [{ result: { ...good, warnings: 'x' } }, /result\.warnings/],
    [{ result: { ...good, warnings: [''] } }, /result\.warnings/],
  ];
  for (const [body, expected] of cases) {
    const parsed = parseAgentEnd(body);
    if (expected === 'ok') assert.equal(typeof parsed, 'object', JSON.stringify(body));
    else assert.match(String(parsed), expected, JSON.stringify(body));
  }
});
