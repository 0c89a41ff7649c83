import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { subsetContains, type VerificationRecord, type VerificationSubset } from './format/verification-record.js';
import { lastVerifiedLookup } from './verification-log.js';

/** The replay of every run, oldest first, as the log's semantics say (the lookup may skip runs that cannot matter). */
function replayAll(records: readonly VerificationRecord[], id: Uint8Array, hex: string): number | undefined {
  let last: number | undefined;
  for (const run of [...records].sort((a, b) => Date.parse(a.time) - Date.parse(b.time))) {
    if (!subsetContains(run.subset, id)) continue;
    const time = Date.parse(run.time);
    if (run.damaged.includes(hex)) last = undefined;
    else if (run.since === null || last === undefined || last < time - run.since) last = time;
  }
  return last;
}

test('the lookup answers as a replay of every run, over mixed histories of full reads, slices, samples, --since and damage', () => {
  const ids = Array.from({ length: 64 }, (_, i) => createHash('sha256').update(`chunk ${i}`).digest());
  let state = 7;
  const random = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  for (let history = 0; history < 200; history++) {
    const records: VerificationRecord[] = Array.from({ length: 1 + random(12) }, (_, i) => {
      const pick = random(4);
      const subset: VerificationSubset = pick === 0 ? { kind: 'slice', n: 1 + random(3), of: 3 } : pick === 1 ? { kind: 'sample', percent: 50, seed: random(1000) } : { kind: 'all' };
      return {
        version: 1,
        time: new Date(Date.UTC(2026, 0, 1 + i * 2 + random(2))).toISOString(),
        subset,
        since: random(3) === 0 ? 3 * 86_400_000 : null,
        chunksRead: 0,
        bytesRead: 0,
        damaged: ids.filter(() => random(20) === 0).map((id) => id.toString('hex')),
      };
    });
    const lookup = lastVerifiedLookup(records);
    for (const id of ids) assert.equal(lookup(id, id.toString('hex')), replayAll(records, id, id.toString('hex')), `history ${history}`);
  }
});

test('after a full read, the runs before it no longer matter: a chunk damaged then and read intact since counts as read', () => {
  const id = createHash('sha256').update('x').digest();
  const hex = id.toString('hex');
  const run = (day: number, damaged: string[]): VerificationRecord => ({ version: 1, time: new Date(Date.UTC(2026, 0, day)).toISOString(), subset: { kind: 'all' }, since: null, chunksRead: 1, bytesRead: 1, damaged });
  assert.equal(lastVerifiedLookup([run(1, []), run(2, [hex])])(id, hex), undefined);
  assert.equal(lastVerifiedLookup([run(2, [hex]), run(3, [])])(id, hex), Date.UTC(2026, 0, 3));
});
