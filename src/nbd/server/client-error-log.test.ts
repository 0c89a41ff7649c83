import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CofferError } from '../../errors/index.js';
import { ClientErrorLog, MAX_DISTINCT } from './client-error-log.js';

test('each distinct client error is written at most once per interval, with the count held back', () => {
  const lines: string[] = [];
  let now = 0;
  const log = new ClientErrorLog((line) => lines.push(line), 10_000, () => now);
  const corrupt = new CofferError('E_CORRUPT_OBJECT', 'chunk 1a2b is corrupt');
  for (let i = 0; i < 5; i++) log.report(corrupt);
  log.report(new Error('socket hang up'));
  now = 10_000;
  log.report(corrupt);
  log.report(corrupt);
  log.flush();
  log.flush();
  assert.deepEqual(lines, [
    'NBD client: chunk 1a2b is corrupt (E_CORRUPT_OBJECT)',
    'NBD client: socket hang up',
    'NBD client: chunk 1a2b is corrupt (E_CORRUPT_OBJECT) (and 4 more like it since the last report)',
    'NBD client: chunk 1a2b is corrupt (E_CORRUPT_OBJECT) (1 more like it since the last report)',
  ]);
});

test('a count held back is written by the next report of any message once its interval ends, and messages are forgotten then', () => {
  const lines: string[] = [];
  let now = 0;
  const log = new ClientErrorLog((line) => lines.push(line), 10_000, () => now);
  for (let i = 0; i < 3; i++) log.report(new Error('read failed at 0'));
  now = 12_000;
  log.report(new Error('socket hang up'));
  log.flush();
  assert.deepEqual(lines, [
    'NBD client: read failed at 0',
    'NBD client: read failed at 0 (and 2 more like it since the last report)',
    'NBD client: socket hang up',
  ]);
});

test(`at most ${MAX_DISTINCT} distinct messages are remembered; beyond, one line counts the rest`, () => {
  const lines: string[] = [];
  let now = 0;
  const log = new ClientErrorLog((line) => lines.push(line), 10_000, () => now);
  for (let i = 0; i < MAX_DISTINCT + 40; i++) log.report(new Error(`chunk at ${i} is damaged`));
  assert.equal(lines.length, MAX_DISTINCT);
  now = 20_000;
  log.report(new Error('socket hang up'));
  assert.deepEqual(lines.slice(MAX_DISTINCT), [
    `NBD client: 40 more errors of other kinds were not written (more than ${MAX_DISTINCT} distinct ones within 10 s)`,
    'NBD client: socket hang up',
  ]);
});
