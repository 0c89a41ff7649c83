import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyRetention } from '../../../repo/index.js';
import { retentionPolicy } from './editor-preview-routes.js';

test('a job\'s retention settings become the policy the forget task applies', () => {
  const policy = retentionPolicy({ 'keep-last': 2, 'keep-daily': 7, 'keep-within': '3d', 'keep-tags': ['release', 'audit'] });
  assert.equal(policy.last, 2);
  assert.equal(policy.daily, 7);
  assert.deepEqual(policy.tags, [['release'], ['audit']]);
  assert.ok(policy.within !== undefined);
  // Applied as the forget task applies it: last 2 of four daily snapshots, the tagged one kept too.
  const snapshots = ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23'].map((day, i) => ({ id: `s${i}`, vm: 'web1', time: `${day}T22:00:00Z`, tags: i === 0 ? ['release'] : [], protected: false }));
  const kept = applyRetention(snapshots, retentionPolicy({ 'keep-last': 2, 'keep-tags': ['release'] }))[0]?.decisions.filter((d) => d.keep).map((d) => d.snapshot.id);
  assert.deepEqual(kept, ['s0', 's2', 's3']);
});

test('a retention that keeps nothing is refused before anything is computed', () => {
  assert.throws(() => retentionPolicy({}), (error: Error & { code?: string }) => error.code === 'E_VALIDATION');
});
