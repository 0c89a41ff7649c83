/**
 * CofferErrors as HTTP problems: a refusal by the repository itself (a repository server's or
 * a bucket's answer to the server's own credentials) is a bad gateway, not a server failure
 * and not the caller's 403; a snapshot under Object Lock is a conflict.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CofferError } from '../../errors/index.js';
import { toProblem } from './problem.js';

test('the repository refusing the server (E_ACCESS_DENIED) is 502, a locked snapshot 409, an unknown code an internal 500', () => {
  const status = (error: unknown) => {
    const { problem, internal } = toProblem(error);
    return [problem.status, problem.code, internal];
  };
  assert.deepEqual(status(new CofferError('E_ACCESS_DENIED', 'an append-only token may not write tags/')), [502, 'E_ACCESS_DENIED', false]);
  assert.deepEqual(status(new CofferError('E_SNAPSHOT_LOCKED', 'locked until 2027-01-01')), [409, 'E_SNAPSHOT_LOCKED', false]);
  assert.deepEqual(status(new CofferError('E_BACKEND_IO', 'the disk failed')), [502, 'E_BACKEND_IO', false]);
  assert.equal(toProblem(new Error('a bug')).problem.status, 500);
});
