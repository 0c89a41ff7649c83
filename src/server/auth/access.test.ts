import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allows, grantWithin, LoginThrottle, FREE_FAILURES, hashPassword, verifyPassword, ROLE_PERMISSIONS, ROLES } from './index.js';

test('a grant covers its path and what lies under it, never a sibling', () => {
  const grants = [{ role: 'RestoreOperator', path: '/vms/web1' }];
  assert.ok(allows(grants, 'restore.run', ['/vms/web1']));
  assert.ok(!allows(grants, 'restore.run', ['/vms/web10']), 'a name prefix is not a path prefix');
  assert.ok(!allows(grants, 'restore.run', ['/vms/web2']));
  assert.ok(!allows(grants, 'snapshot.delete', ['/vms/web1']), 'a RestoreOperator never deletes');
  assert.ok(allows([{ role: 'Operator', path: '/hosts/hv1' }], 'job.run', ['/vms/web1', '/hosts/hv1']), 'a VM lives under its host too');
  assert.ok(allows([{ role: 'Auditor', path: '/' }], 'audit.read', ['/']));
  assert.ok(!allows([{ role: 'Superuser', path: '/' }], 'audit.read', ['/']), 'an unknown role gives nothing');
});

test('only Admin deletes; every role reads the inventory; the table names known permissions only', () => {
  for (const role of ROLES) {
    assert.equal(ROLE_PERMISSIONS[role].includes('snapshot.delete'), role === 'Admin', role);
    assert.ok(ROLE_PERMISSIONS[role].includes('inventory.read'), role);
  }
});

test('a token grant must lie within its owner\'s grants', () => {
  const owner = [{ role: 'Operator', path: '/hosts/hv1' }];
  assert.ok(grantWithin({ role: 'RestoreOperator', path: '/hosts/hv1' }, owner));
  assert.ok(grantWithin({ role: 'BackupOperator', path: '/vms/web1' }, [{ role: 'Operator', path: '/' }]));
  assert.ok(!grantWithin({ role: 'Operator', path: '/' }, owner), 'a wider path');
  assert.ok(!grantWithin({ role: 'Admin', path: '/hosts/hv1' }, owner), 'a stronger role');
  assert.ok(!grantWithin({ role: 'Auditor', path: '/hosts/hv1' }, owner), 'Auditor reads the audit log, which Operator cannot');
});

test('logins slow down after repeated failures, per user and per address, and a success clears them', () => {
  let now = 1_000_000;
  const throttle = new LoginThrottle(() => now);
  for (let i = 0; i < FREE_FAILURES - 1; i++) throttle.failed('alice', '10.0.0.1');
  assert.equal(throttle.waitFor('alice', '10.0.0.1'), 0);
  throttle.failed('alice', '10.0.0.1');
  assert.equal(throttle.waitFor('alice', '10.0.0.2'), 1000, 'the user is slowed from any address');
  assert.equal(throttle.waitFor('bob', '10.0.0.1'), 1000, 'the address is slowed for any user');
  throttle.failed('alice', '10.0.0.1');
  assert.equal(throttle.waitFor('alice', '10.0.0.1'), 2000, 'the wait doubles');
  now += 2000;
  assert.equal(throttle.waitFor('alice', '10.0.0.1'), 0);
  throttle.succeeded('alice', '10.0.0.1');
  throttle.failed('alice', '10.0.0.1');
  assert.equal(throttle.waitFor('alice', '10.0.0.1'), 0);
});

test('passwords: scrypt with stored parameters, a fresh salt each time, malformed hashes refused', async () => {
  const a = await hashPassword('correct horse');
  const b = await hashPassword('correct horse');
  assert.notEqual(a, b);
  assert.match(a, /^scrypt\$32768\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
  assert.ok(await verifyPassword('correct horse', a));
  assert.ok(!(await verifyPassword('correct horsE', a)));
  assert.ok(!(await verifyPassword('x', 'scrypt$99999999$8$1$AA$AA')), 'absurd parameters are refused, not run');
  assert.ok(!(await verifyPassword('x', 'md5$abc')));
});
