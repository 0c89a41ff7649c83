/**
 * The retention policy against hand-computed expectations: each case lists the snapshots
 * kept, with their reasons, and everything else must be removed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { applyRetention, type RetentionCandidate } from './apply-retention.js';
import { parseRetentionDuration, type RetentionPolicy } from './policy.js';

interface Snap extends RetentionCandidate {}

/** A snapshot whose id is its time (unless given), of VM `a` by default. */
function snap(time: string, options: Partial<Snap> = {}): Snap {
  return { id: options.id ?? time, vm: options.vm ?? 'a', time, tags: options.tags ?? [], protected: options.protected ?? false, ...(options.files === undefined ? {} : { files: options.files }) };
}

/** The kept snapshots with their reasons (by id), and the removed ids, of one VM. */
function outcome(snapshots: Snap[], policy: RetentionPolicy, vm = 'a'): { kept: Record<string, string[]>; removed: string[] } {
  const group = applyRetention(snapshots, policy).find((g) => g.vm === vm);
  assert.ok(group !== undefined, `no group for ${vm}`);
  assert.equal(group.decisions.length, snapshots.filter((s) => s.vm === vm).length);
  const kept: Record<string, string[]> = {};
  const removed: string[] = [];
  for (const d of group.decisions) {
    assert.equal(d.keep, d.reasons.length > 0);
    if (d.keep) kept[d.snapshot.id] = d.reasons;
    else removed.push(d.snapshot.id);
  }
  return { kept, removed };
}

const at = (times: string[], options: Partial<Snap> = {}) => times.map((t) => snap(t, options));

test('keep-last keeps the newest N, ranked', () => {
  const history = at(['2026-11-20T10:00:00Z', '2026-11-21T10:00:00Z', '2026-11-22T10:00:00Z', '2026-11-23T10:00:00Z', '2026-11-24T10:00:00Z']);
  assert.deepEqual(outcome(history, { last: 3 }), {
    kept: { '2026-11-22T10:00:00Z': ['last 3'], '2026-11-23T10:00:00Z': ['last 2'], '2026-11-24T10:00:00Z': ['newest', 'last 1'] },
    removed: ['2026-11-20T10:00:00Z', '2026-11-21T10:00:00Z'],
  });
  assert.deepEqual(outcome(history, { last: -1 }).removed, []);
  assert.deepEqual(outcome(history, { last: 9 }).removed, []);
});

test('keep-hourly: the newest of each hour that has snapshots; the oldest too while hours are left', () => {
  const history = at(['2026-11-24T10:05:00Z', '2026-11-24T10:40:00Z', '2026-11-24T11:10:00Z', '2026-11-24T13:00:00Z', '2026-11-24T13:59:59Z']);
  assert.deepEqual(outcome(history, { hourly: 2 }), {
    kept: { '2026-11-24T11:10:00Z': ['hourly 2026-11-24T11'], '2026-11-24T13:59:59Z': ['newest', 'hourly 2026-11-24T13'] },
    removed: ['2026-11-24T10:05:00Z', '2026-11-24T10:40:00Z', '2026-11-24T13:00:00Z'],
  });
  // 12:00 has no snapshot and does not count: three hours reach back to 10:00.
  assert.deepEqual(outcome(history, { hourly: 3 }).removed, ['2026-11-24T10:05:00Z', '2026-11-24T13:00:00Z']);
  // A fourth hour is left over, so the oldest snapshot is kept as well (restic 0.17 and later).
  assert.deepEqual(outcome(history, { hourly: 4 }), {
    kept: {
      '2026-11-24T10:05:00Z': ['hourly 2026-11-24T10 (oldest)'],
      '2026-11-24T10:40:00Z': ['hourly 2026-11-24T10'],
      '2026-11-24T11:10:00Z': ['hourly 2026-11-24T11'],
      '2026-11-24T13:59:59Z': ['newest', 'hourly 2026-11-24T13'],
    },
    removed: ['2026-11-24T13:00:00Z'],
  });
});

test('keep-daily at the first and last instant of days', () => {
  const history = at(['2026-11-20T00:00:00.000Z', '2026-11-20T23:59:59.999Z', '2026-11-21T00:00:00.000Z', '2026-11-22T12:00:00.000Z', '2026-11-22T23:59:59.999Z']);
  assert.deepEqual(outcome(history, { daily: 2 }), {
    kept: { '2026-11-21T00:00:00.000Z': ['daily 2026-11-21'], '2026-11-22T23:59:59.999Z': ['newest', 'daily 2026-11-22'] },
    removed: ['2026-11-20T00:00:00.000Z', '2026-11-20T23:59:59.999Z', '2026-11-22T12:00:00.000Z'],
  });
  assert.deepEqual(outcome(history, { daily: 3 }).kept['2026-11-20T23:59:59.999Z'], ['daily 2026-11-20']);
  assert.deepEqual(outcome(history, { daily: 3 }).removed, ['2026-11-20T00:00:00.000Z', '2026-11-22T12:00:00.000Z']);
  assert.deepEqual(outcome(history, { daily: 4 }).kept['2026-11-20T00:00:00.000Z'], ['daily 2026-11-20 (oldest)']);
});

test('unlimited keeps the newest of every period, and the oldest snapshot', () => {
  const history = at(['2026-11-20T01:00:00Z', '2026-11-20T02:00:00Z', '2026-11-20T03:00:00Z', '2026-11-21T01:00:00Z', '2026-11-21T02:00:00Z']);
  assert.deepEqual(outcome(history, { daily: -1 }), {
    kept: {
      '2026-11-20T01:00:00Z': ['daily 2026-11-20 (oldest)'],
      '2026-11-20T03:00:00Z': ['daily 2026-11-20'],
      '2026-11-21T02:00:00Z': ['newest', 'daily 2026-11-21'],
    },
    removed: ['2026-11-20T02:00:00Z', '2026-11-21T01:00:00Z'],
  });
});

test('keep-weekly counts ISO weeks across a year end', () => {
  const history = at(['2024-12-23T08:00:00Z', '2024-12-29T08:00:00Z', '2024-12-30T08:00:00Z', '2025-01-05T08:00:00Z', '2025-01-06T08:00:00Z']);
  assert.deepEqual(outcome(history, { weekly: 3 }), {
    kept: { '2024-12-29T08:00:00Z': ['weekly 2024-W52'], '2025-01-05T08:00:00Z': ['weekly 2025-W01'], '2025-01-06T08:00:00Z': ['newest', 'weekly 2025-W02'] },
    removed: ['2024-12-23T08:00:00Z', '2024-12-30T08:00:00Z'],
  });
  // By year, 30 December 2024 is 2024's newest, although its ISO week belongs to 2025.
  assert.deepEqual(outcome(history, { yearly: 2 }).kept, { '2024-12-30T08:00:00Z': ['yearly 2024'], '2025-01-06T08:00:00Z': ['newest', 'yearly 2025'] });
});

test('monthly and yearly over years: first and last instants of months and years', () => {
  const history = at(['2023-06-15T00:00:00Z', '2024-01-01T00:00:00Z', '2024-12-31T23:59:59Z', '2025-03-10T00:00:00Z', '2025-03-20T00:00:00Z', '2025-04-01T00:00:00Z', '2026-01-15T00:00:00Z']);
  assert.deepEqual(outcome(history, { monthly: 3, yearly: 3 }), {
    kept: {
      '2024-12-31T23:59:59Z': ['yearly 2024'],
      '2025-03-20T00:00:00Z': ['monthly 2025-03'],
      '2025-04-01T00:00:00Z': ['monthly 2025-04', 'yearly 2025'],
      '2026-01-15T00:00:00Z': ['newest', 'monthly 2026-01', 'yearly 2026'],
    },
    removed: ['2023-06-15T00:00:00Z', '2024-01-01T00:00:00Z', '2025-03-10T00:00:00Z'],
  });
  assert.deepEqual(outcome(history, { monthly: 3, yearly: 4 }).kept['2023-06-15T00:00:00Z'], ['yearly 2023']);
  assert.deepEqual(outcome(history, { monthly: 6 }).kept['2023-06-15T00:00:00Z'], ['monthly 2023-06']);
  assert.deepEqual(outcome(history, { monthly: 6 }).removed, ['2025-03-10T00:00:00Z']);
});

test('hours to years: a combined policy over two weeks of twice-daily snapshots across New Year', () => {
  const history: Snap[] = [];
  for (let day = Date.UTC(2025, 11, 25); day <= Date.UTC(2026, 0, 6); day += 86_400_000) {
    for (const hour of [2, 14]) history.push(snap(new Date(day + hour * 3_600_000).toISOString()));
  }
  assert.equal(history.length, 26);
  const result = outcome(history, { last: 2, daily: 3, weekly: 2, monthly: 2, yearly: 3 });
  assert.deepEqual(result.kept, {
    // 2025 has room for one more year (yearly 3, only 2025 and 2026 exist): its oldest is kept.
    '2025-12-25T02:00:00.000Z': ['yearly 2025 (oldest)'],
    '2025-12-31T14:00:00.000Z': ['monthly 2025-12', 'yearly 2025'],
    // Sunday 4 January 2026 ends ISO week 2026-W01, which began on Monday 29 December 2025.
    '2026-01-04T14:00:00.000Z': ['daily 2026-01-04', 'weekly 2026-W01'],
    '2026-01-05T14:00:00.000Z': ['daily 2026-01-05'],
    '2026-01-06T02:00:00.000Z': ['last 2'],
    '2026-01-06T14:00:00.000Z': ['newest', 'last 1', 'daily 2026-01-06', 'weekly 2026-W02', 'monthly 2026-01', 'yearly 2026'],
  });
  assert.equal(result.removed.length, 20);
});

test('keep-within counts back from the newest snapshot, not from now, and is strict at its edge', () => {
  const history = at(['2026-11-10T00:00:00.000Z', '2026-11-17T12:00:00.000Z', '2026-11-17T12:00:00.001Z', '2026-11-24T12:00:00.000Z']);
  assert.deepEqual(outcome(history, { within: parseRetentionDuration('7d') }), {
    kept: { '2026-11-17T12:00:00.001Z': ['within 7d'], '2026-11-24T12:00:00.000Z': ['newest', 'within 7d'] },
    removed: ['2026-11-10T00:00:00.000Z', '2026-11-17T12:00:00.000Z'],
  });
  const march = at(['2026-03-02T23:00:00.000Z', '2026-03-03T00:00:00.001Z', '2026-03-31T00:00:00.000Z']);
  assert.deepEqual(outcome(march, { within: parseRetentionDuration('1m') }).removed, ['2026-03-02T23:00:00.000Z']);
});

test('keep-tag keeps snapshots that carry every tag of one list', () => {
  const history = [
    snap('2026-11-20T00:00:00Z', { tags: ['a'] }),
    snap('2026-11-21T00:00:00Z', { tags: ['a', 'b', 'c'] }),
    snap('2026-11-22T00:00:00Z', { tags: ['monthly-report'] }),
    snap('2026-11-23T00:00:00Z', { tags: ['b'] }),
    snap('2026-11-24T00:00:00Z'),
  ];
  assert.deepEqual(outcome(history, { tags: [['monthly-report'], ['a', 'b']] }), {
    kept: { '2026-11-21T00:00:00Z': ['tag a,b'], '2026-11-22T00:00:00Z': ['tag monthly-report'], '2026-11-24T00:00:00Z': ['newest'] },
    removed: ['2026-11-20T00:00:00Z', '2026-11-23T00:00:00Z'],
  });
});

test('ties in the same instant: the greater id is the newer, whatever the input order', () => {
  const one = snap('2026-11-24T10:00:00Z', { id: 'aaaa' });
  const two = snap('2026-11-24T10:00:00Z', { id: 'bbbb' });
  const older = snap('2026-11-23T10:00:00Z', { id: 'cccc' });
  for (const order of [[one, two, older], [two, older, one], [older, two, one]]) {
    assert.deepEqual(outcome(order, { daily: 1 }), { kept: { bbbb: ['newest', 'daily 2026-11-24'] }, removed: ['cccc', 'aaaa'] });
    assert.deepEqual(outcome(order, { last: 2 }), { kept: { aaaa: ['last 2'], bbbb: ['newest', 'last 1'] }, removed: ['cccc'] });
  }
  // Equal instants written differently are still a tie, broken by id.
  const written = [snap('2026-11-24T11:00:00+01:00', { id: 'ffff' }), snap('2026-11-24T10:00:00.000Z', { id: 'eeee' })];
  assert.deepEqual(outcome(written, { last: 1 }).kept, { ffff: ['newest', 'last 1'] });
});

test('each VM is its own group, sorted by name', () => {
  const history = [
    snap('2026-11-20T00:00:00Z', { vm: 'web', id: 'w1' }),
    snap('2026-11-21T00:00:00Z', { vm: 'db', id: 'd1' }),
    snap('2026-11-22T00:00:00Z', { vm: 'web', id: 'w2' }),
    snap('2026-11-20T06:00:00Z', { vm: 'db', id: 'd0' }),
  ];
  const groups = applyRetention(history, { last: 1 });
  assert.deepEqual(
    groups.map((g) => ({ vm: g.vm, decisions: g.decisions.map((d) => `${d.snapshot.id}:${d.keep ? d.reasons.join('+') : 'remove'}`) })),
    [
      { vm: 'db', decisions: ['d0:remove', 'd1:newest+last 1'] },
      { vm: 'web', decisions: ['w1:remove', 'w2:newest+last 1'] },
    ],
  );
});

test('protected snapshots are always kept and use up no count', () => {
  const history = [
    snap('2026-11-20T00:00:00Z', { protected: true }),
    snap('2026-11-21T00:00:00Z'),
    snap('2026-11-22T00:00:00Z'),
    snap('2026-11-23T00:00:00Z'),
    snap('2026-11-24T00:00:00Z', { protected: true, tags: ['x'] }),
  ];
  assert.deepEqual(outcome(history, { daily: 1, tags: [['x']] }), {
    kept: {
      '2026-11-20T00:00:00Z': ['protected'],
      '2026-11-23T00:00:00Z': ['daily 2026-11-23'],
      '2026-11-24T00:00:00Z': ['protected', 'newest', 'tag x'],
    },
    removed: ['2026-11-21T00:00:00Z', '2026-11-22T00:00:00Z'],
  });
  // The oldest rule looks at the oldest unprotected snapshot.
  assert.deepEqual(outcome(history, { daily: 5 }).kept['2026-11-21T00:00:00Z'], ['daily 2026-11-21']);
  assert.deepEqual(outcome(history, { last: 1 }).removed, ['2026-11-21T00:00:00Z', '2026-11-22T00:00:00Z']);
});

test('the newest snapshot of a VM is always kept, even when no rule keeps it', () => {
  const history = at(['2026-11-22T00:00:00Z', '2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z']);
  assert.deepEqual(outcome(history, { tags: [['never-used']] }), { kept: { '2026-11-24T00:00:00Z': ['newest'] }, removed: ['2026-11-22T00:00:00Z', '2026-11-23T00:00:00Z'] });
});

test('a policy that keeps nothing is refused before anything is decided', () => {
  assert.throws(() => applyRetention(at(['2026-11-24T00:00:00Z']), {}), (e) => isCofferError(e, 'E_USAGE'));
  assert.throws(() => applyRetention(at(['2026-11-24T00:00:00Z']), { last: 0, weekly: 0 }), (e) => isCofferError(e, 'E_USAGE'));
  assert.throws(() => applyRetention([snap('yesterday')], { last: 1 }), (e) => isCofferError(e, 'E_USAGE'));
  assert.deepEqual(applyRetention([], { last: 1 }), []);
});

test('a VM\'s disk snapshots and each set of its file snapshots (same paths, or same stream) are kept apart', () => {
  const etc = { paths: ['/home', '/etc'] };
  const snapshots: Snap[] = [
    snap('2026-11-28T01:00:00Z', { id: 'disk1' }),
    snap('2026-11-28T02:00:00Z', { id: 'etc1', files: etc }),
    snap('2026-11-29T01:00:00Z', { id: 'disk2' }),
    snap('2026-11-29T02:00:00Z', { id: 'etc2', files: { paths: ['/etc', '/home'] } }),
    snap('2026-11-29T03:00:00Z', { id: 'dump', files: { paths: [], stdinName: 'db.sql' } }),
  ];
  const groups = applyRetention(snapshots, { daily: 1 });
  assert.deepEqual(groups.map((g) => [g.vm, g.files, g.decisions.map((d) => `${d.snapshot.id}:${d.keep ? 'keep' : 'remove'}`)]), [
    ['a', undefined, ['disk1:remove', 'disk2:keep']],
    ['a', { paths: ['/etc', '/home'] }, ['etc1:remove', 'etc2:keep']],
    ['a', { paths: [], stdinName: 'db.sql' }, ['dump:keep']],
  ]);
});
