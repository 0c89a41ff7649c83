import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CofferError } from '../../errors/index.js';
import { ClientErrorLog } from './client-error-log.js';

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
