import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AffectedRange, SyncedFrom } from '../../repo/index.js';
import { copyRepairAdvice } from './copy-repair-advice.js';

const id = (n: number) => String(n).repeat(64).slice(0, 64);
const hit = (snapshot: string, extra: Partial<AffectedRange> = {}): AffectedRange => ({ snapshot, vm: 'web', time: '2026-11-29T00:00:00Z', disk: 'disk0', ranges: [{ start: 0, end: 4096 }], ...extra });
const from = (location: string): SyncedFrom => ({ repository: 'a'.repeat(32), snapshot: 'b'.repeat(64), location });

test('chunks lost in copies, or a file snapshot\'s trees: sync --check from their source; a disk snapshot\'s index page lost: forget and sync anew', () => {
  const copies = new Map([[id(1), from('/srv/main')], [id(2), from('/srv/main')], [id(3), from('/srv/main')], [id(4), from('/srv/main')], [id(6), from('/srv/main')]]);
  const lines = copyRepairAdvice(
    [hit(id(1)), hit(id(2), { indexDamaged: true }), hit(id(3)), hit(id(4), { disk: '/etc/hosts' }), hit(id(5)), hit(id(6), { disk: '/etc', ranges: [], indexDamaged: true })],
    copies,
    (s) => s === id(4) || s === id(6),
    '/mnt/offsite',
  );
  assert.deepEqual(lines, [
    "4 damaged snapshot(s) are copies made by coffer sync from /srv/main: 'coffer sync -r /srv/main --to /mnt/offsite --check' sends what is missing here again (--read-data: what is damaged too)",
    `1 damaged snapshot(s) are copies made by coffer sync from /srv/main that sync cannot mend (an index page lost): forget them here ('coffer forget -r /mnt/offsite ${id(2)}'), then 'coffer sync -r /srv/main --to /mnt/offsite' copies them anew`,
  ]);
});

test('a disk with chunks and an index page lost is named once, to be copied anew; two sources, two lines each where needed', () => {
  const copies = new Map([[id(1), from('/srv/a')], [id(2), from('s3:https://rgw:7480/b/p')]]);
  const lines = copyRepairAdvice([hit(id(1)), hit(id(1), { disk: 'disk1', indexDamaged: true }), hit(id(2))], copies, () => false, '/mnt/o');
  assert.equal(lines.length, 2);
  assert.match(lines[0] as string, /^1 damaged snapshot\(s\) are copies made by coffer sync from \/srv\/a that sync cannot mend/);
  assert.match(lines[1] as string, /'coffer sync -r s3:https:\/\/rgw:7480\/b\/p --to \/mnt\/o --check'/);
});

test('repositories are quoted as a shell needs them; a note without a location says SOURCE', () => {
  const copies = new Map([[id(1), from("/srv/it's main")], [id(2), from('')]]);
  const lines = copyRepairAdvice([hit(id(1)), hit(id(2))], copies, () => false, '/mnt/off site');
  assert.equal(lines[0], "1 damaged snapshot(s) are copies made by coffer sync from /srv/it's main: 'coffer sync -r '/srv/it'\\''s main' --to '/mnt/off site' --check' sends what is missing here again (--read-data: what is damaged too)");
  assert.match(lines[1] as string, /from another repository: 'coffer sync -r SOURCE --to '\/mnt\/off site' --check'/);
});

test('no copies among the damaged snapshots: nothing to advise', () => {
  assert.deepEqual(copyRepairAdvice([hit(id(1))], new Map(), () => false, '/r'), []);
});
