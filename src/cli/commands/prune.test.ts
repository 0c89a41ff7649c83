import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PruneReport } from '../../repo/index.js';
import { renderPrune } from './prune.js';

const report = (extra: Partial<PruneReport> = {}): PruneReport => ({
  dryRun: false, snapshots: 2, chunksReferenced: 48, indexPagesReferenced: 2, chunksRemoved: 0, indexPagesRemoved: 0, notesRemoved: 0, tagRecordsRemoved: 0,
  bytesFreed: 0, chunksKept: 48, bytesKept: 0, expiredLeasesRemoved: 0, quarantineRetired: 0, stillLocked: 0, ...extra,
});

const retiredLines = (text: string) => text.split('\n').filter((line) => line.includes('quarantine markers'));

test('prune\'s text report names the quarantine markers it retired (or would), and says nothing of them when there were none', () => {
  assert.deepEqual(retiredLines(renderPrune(report())), []);
  assert.deepEqual(retiredLines(renderPrune(report({ quarantineRetired: 8 }))), [
    'retired the quarantine markers of 8 chunk(s) verify found damaged: their damaged copies are gone, so backups deduplicate against them again instead of storing them once more',
  ]);
  assert.match(retiredLines(renderPrune(report({ dryRun: true, quarantineRetired: 1 })))[0] ?? '', /^would retire the quarantine markers of 1 chunk\(s\)/);
});

test('prune\'s text report says when it wrote a missing space reserve, and warns when there was no room for it', () => {
  const reserveLines = (text: string) => text.split('\n').filter((line) => line.includes('space reserve'));
  assert.deepEqual(reserveLines(renderPrune(report())), []);
  assert.deepEqual(reserveLines(renderPrune(report({ spaceReserve: { released: false, missing: false, restored: true, written: true } }))), [
    'the repository has a space reserve now (16.0 MiB), for the next time the disk fills up',
  ]);
  assert.deepEqual(reserveLines(renderPrune(report({ spaceReserve: { released: true, missing: false, restored: true, written: true } }))), [
    "the disk was full: prune used the repository's space reserve to delete what no snapshot uses first",
  ]);
  assert.match(reserveLines(renderPrune(report({ spaceReserve: { released: false, missing: false, restored: false, written: false } })))[0] ?? '', /^warning: no room to write back the space reserve \(16.0 MiB\)/);
});
