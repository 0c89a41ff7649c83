import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthFailureLimiter } from './auth-limiter.js';

test('an address is blocked after maxFailures within the window, until the oldest leaves it; others are not', () => {
  let now = 0;
  const limiter = new AuthFailureLimiter({ maxFailures: 3, windowMs: 1000, maxAddresses: 2 }, () => now);
  for (let i = 0; i < 3; i++) {
    assert.equal(limiter.blockedFor('a'), 0);
    limiter.fail('a');
    now += 100;
  }
  assert.equal(limiter.blockedFor('a'), 700, 'until the failure at 0 is 1000 ms old');
  assert.equal(limiter.blockedFor('b'), 0);
  now = 1001;
  assert.equal(limiter.blockedFor('a'), 0, 'the first failure left the window');
});

test('memory is bounded: past maxAddresses the oldest address is forgotten', () => {
  const limiter = new AuthFailureLimiter({ maxFailures: 1, windowMs: 1000, maxAddresses: 2 }, () => 0);
  limiter.fail('a');
  limiter.fail('b');
  assert.ok(limiter.blockedFor('a') > 0 && limiter.blockedFor('b') > 0);
  limiter.fail('c');
  assert.equal(limiter.blockedFor('a'), 0);
  assert.ok(limiter.blockedFor('b') > 0 && limiter.blockedFor('c') > 0);
});
