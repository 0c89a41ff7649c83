/**
 * The prune generation (docs/repository-format.md §19.11) on a real local backend: the record's
 * bytes, the generations prunes write, and what a backup learns from its parent's mark — the
 * packs removed since, nothing when none was, and "unknown" (each pack asked for) whenever
 * the records cannot vouch for the gap.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CofferError, isCofferError } from '../errors/index.js';
import { makeTempDir } from '../testing/index.js';
import { ForwardingBackend } from './backend/forwarding-backend.js';
import { LocalBackend } from './backend/local-backend.js';
import type { BackendEntry } from './backend/backend.js';
import { decodeRemovedPacks, encodeRemovedPacks, NO_REMOVALS, parseRecordName, recordName } from './format/removed-packs.js';
import { REMOVED_PACKS_PREFIX } from './layout.js';
import { dropUnneededRecords, packRemovalsSince, recordRemovedPacks } from './pack-removals.js';

const pack = (n: number) => n.toString(16).padStart(64, '0');
let work: { path: string; remove(): Promise<void> };
before(async () => {
  work = await makeTempDir('coffer-pack-removals');
});
after(async () => {
  await work?.remove();
});

test('a record holds its packs ascending and unique, under its generation, and refuses any damage', () => {
  const name = recordName(7, 'ab'.repeat(16));
  assert.equal(name, `000000000007.${'ab'.repeat(16)}`);
  assert.deepEqual(parseRecordName(name), { generation: 7, name });
  for (const bad of ['none', `000000000000.${'ab'.repeat(16)}`, `7.${'ab'.repeat(16)}`, `000000000007.${'AB'.repeat(16)}`, `.tmp-0123456789abcdef`]) assert.equal(parseRecordName(bad), null, bad);
  const bytes = encodeRemovedPacks(7, [pack(3), pack(1), pack(3)]);
  assert.equal(bytes.length, 16 + 2 * 32 + 32);
  assert.equal(bytes.subarray(0, 4).toString('ascii'), 'CFR1');
  assert.equal(bytes.readUInt32LE(4), 2);
  assert.equal(bytes.readBigUInt64LE(8), 7n);
  assert.deepEqual(decodeRemovedPacks(bytes, name), [pack(1), pack(3)]);
  const damaged: [string, Buffer, string][] = [
    ['a flipped id byte', Buffer.from(bytes).fill(0xff, 20, 21), name],
    ['truncated', bytes.subarray(0, bytes.length - 1), name],
    ['another generation', bytes, recordName(8, 'ab'.repeat(16))],
    ['bad magic', Buffer.concat([Buffer.from('CFX1'), bytes.subarray(4)]), name],
  ];
  for (const [why, bad, as] of damaged) assert.throws(() => decodeRemovedPacks(bad, as), (e: unknown) => isCofferError(e, 'E_CORRUPT_OBJECT'), why);
  assert.throws(() => encodeRemovedPacks(1, []), RangeError);
});

test('each prune\'s record is the next generation; a backup learns what was removed since its parent\'s mark', async () => {
  const repo = { backend: new LocalBackend(join(work.path, 'seq')) };
  const empty = await packRemovalsSince(repo, undefined);
  assert.deepEqual(empty, { mark: NO_REMOVALS, since: undefined }, 'a parent with no mark: unknown');
  assert.deepEqual(await packRemovalsSince(repo, NO_REMOVALS), { mark: NO_REMOVALS, since: new Set() }, 'nothing removed ever');

  const [first] = await recordRemovedPacks(repo, [pack(1), pack(2)]);
  assert.equal(parseRecordName(first as string)?.generation, 1);
  const [second] = await recordRemovedPacks(repo, [pack(3)]);
  assert.equal(parseRecordName(second as string)?.generation, 2);
  // A local backend's temporary file is no record.
  await writeFile(join(work.path, 'seq', REMOVED_PACKS_PREFIX, '.tmp-0123456789abcdef'), 'x');

  const table: [string, string | undefined, ReadonlySet<string> | undefined][] = [
    ['the newest: nothing removed since', second, new Set()],
    ['one generation behind', first, new Set([pack(3)])],
    ['written before any record', NO_REMOVALS, new Set([pack(1), pack(2), pack(3)])],
    ['no mark (an older snapshot)', undefined, undefined],
    ['another repository\'s mark', recordName(2, 'cd'.repeat(16)), undefined],
    ['a mark newer than every record', recordName(9, 'cd'.repeat(16)), undefined],
    ['not a record name', 'garbage', undefined],
  ];
  for (const [why, mark, since] of table) assert.deepEqual(await packRemovalsSince(repo, mark), { mark: second, since }, why);
});

test('a gap or a damaged record after the parent\'s mark makes it unknown, never a wrong "nothing removed"', async () => {
  const repo = { backend: new LocalBackend(join(work.path, 'gap')) };
  const names = [...(await recordRemovedPacks(repo, [pack(1)])), ...(await recordRemovedPacks(repo, [pack(2)])), ...(await recordRemovedPacks(repo, [pack(3)]))];
  const [one, two, three] = names as [string, string, string];
  await repo.backend.put(REMOVED_PACKS_PREFIX + three, Buffer.from('damaged'));
  assert.deepEqual(await packRemovalsSince(repo, two), { mark: three, since: undefined }, 'the record after the mark does not read');
  await repo.backend.delete(REMOVED_PACKS_PREFIX + two);
  assert.deepEqual(await packRemovalsSince(repo, one), { mark: three, since: undefined }, 'generation 2 is missing');
  assert.deepEqual(await packRemovalsSince(repo, two), { mark: three, since: undefined }, 'the mark\'s own record is gone');
});

/** A repository server older than §19.11: an append-only token may not list `removed-packs/`. */
class OlderServer extends ForwardingBackend {
  override async *list(prefix: string): AsyncIterable<BackendEntry> {
    if (prefix.startsWith('removed-packs/')) throw new CofferError('E_ACCESS_DENIED', 'does not allow this token to list removed-packs/'); // a 403, as it iterates
    yield* super.list(prefix);
  }
}

test('a repository server that refuses the listing: no mark recorded, each pack asked for (the path before)', async () => {
  const repo = { backend: new OlderServer(new LocalBackend(join(work.path, 'older'))) };
  assert.deepEqual(await packRemovalsSince(repo, NO_REMOVALS), { mark: undefined, since: undefined });
});

test('prune drops the records older than the oldest generation a kept snapshot\'s mark names, never the newest', async () => {
  const repo = { backend: new LocalBackend(join(work.path, 'drop')) };
  const names: string[] = [];
  for (let i = 1; i <= 4; i++) names.push(...(await recordRemovedPacks(repo, [pack(i)])));
  const [, two, three, four] = names as [string, string, string, string];
  const listed = async () => {
    const keys: string[] = [];
    for await (const entry of repo.backend.list(REMOVED_PACKS_PREFIX)) keys.push(entry.key.slice(REMOVED_PACKS_PREFIX.length));
    return keys.sort();
  };
  assert.equal(await dropUnneededRecords(repo, [NO_REMOVALS, four, undefined]), 0, 'a snapshot marked none needs every record');
  assert.equal(await dropUnneededRecords(repo, [three, two, recordName(1, 'cd'.repeat(16)), 'garbage']), 1, 'the oldest listed mark is 2; marks not listed pin nothing');
  assert.deepEqual(await listed(), [two, three, four]);
  assert.deepEqual(await packRemovalsSince(repo, two), { mark: four, since: new Set([pack(3), pack(4)]) }, 'the kept snapshots still learn what was removed since');
  assert.equal(await dropUnneededRecords(repo, [undefined]), 2, 'no mark to keep: all but the newest');
  assert.deepEqual(await listed(), [four]);
  assert.equal(parseRecordName((await recordRemovedPacks(repo, [pack(5)]))[0] as string)?.generation, 5, 'the next generation follows the newest');
});
