/**
 * `coffer repair`: damaged snapshots found, marked (and shown by `coffer snapshots`), salvaged
 * into a restorable copy whose damaged block reads as zeros, or forgotten — only when asked;
 * and the mark removed once a later backup heals the data.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, chunkIds, chunkPath, coffer, cofferJson, makeWorkDir, removeDir } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'repair test' };
const opts = { env, timeoutMs: 120_000 };
const KiB = 1024;
const BLOCK = 64 * KiB;
let work: string;
let repo: string;
let shared: Buffer;
let own: Buffer;
let victim: string;

interface RepairJson {
  snapshots: { snapshot: string; disks: { disk: string; ranges: { start: number; end: number }[] }[]; salvagedAs?: string; forgotten: boolean }[];
  healed: string[];
}
interface ListedJson {
  id: string;
  vm: string;
  tags: string[];
  parent: string | null;
  damage?: { disks: unknown[] };
}

before(async () => {
  work = await makeWorkDir('repair');
  repo = `${work}/repo`;
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  assertExit(await coffer(['init', '--format', '1', '-r', repo, '--block-size', '64K'], opts), 0);
  shared = seededBytes(5, 8 * BLOCK);
  own = seededBytes(6, BLOCK);
  await fs.writeFile(`${work}/b.raw`, shared);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'b', `${work}/b.raw`], opts), 0);
  const before = new Set(await chunkIds(repo));
  // a = the shared blocks with its own block in the middle (block 3).
  await fs.writeFile(`${work}/a.raw`, Buffer.concat([shared.subarray(0, 3 * BLOCK), own, shared.subarray(4 * BLOCK)]));
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'a', `${work}/a.raw`], opts), 0);
  const added = (await chunkIds(repo)).filter((id) => !before.has(id));
  assert.equal(added.length, 1);
  victim = added[0] as string;
  const file = chunkPath(repo, victim);
  const blob = await fs.readFile(file);
  blob.writeUInt8(blob.readUInt8(100) ^ 1, 100);
  await fs.writeFile(file, blob);
});
after(() => removeDir(work));

test('repair marks the damaged snapshot only; snapshots shows it; nothing is removed unless asked', async () => {
  const result = await coffer(['repair', '-r', repo, '--read-data', '--json'], opts);
  assertExit(result, 13);
  const out = JSON.parse(result.stdout.toString('utf8')) as RepairJson;
  assert.equal(out.snapshots.length, 1);
  // A raw disk of random bytes has no filesystem: no file to name.
  assert.deepEqual(out.snapshots[0]?.disks, [{ disk: 'disk0', ranges: [{ start: 3 * BLOCK, end: 4 * BLOCK }], files: [] }]);
  assert.equal(out.snapshots[0]?.forgotten, false);
  const listed = await cofferJson<ListedJson[]>(['snapshots', '-r', repo], opts);
  assert.deepEqual(listed.map((s) => [s.vm, s.damage !== undefined]), [['b', false], ['a', true]]);
  const table = await coffer(['snapshots', '-r', repo], opts);
  assert.match(table.stdout.toString('utf8'), /\ba\b.*DAMAGED/);
  // Again: still one mark, not two.
  assertExit(await coffer(['repair', '-r', repo], opts), 13);
  const notes = (await fs.readdir(`${repo}/notes`)).filter((n) => n.startsWith(out.snapshots[0]?.snapshot ?? '?'));
  assert.equal(notes.length, 1);
});

test('--salvage writes a restorable copy whose damaged block reads as zeros', async () => {
  const result = await cofferJson<RepairJson>(['repair', '-r', repo, '--salvage'], opts);
  const salvagedId = result.snapshots[0]?.salvagedAs as string;
  assert.match(salvagedId, /^[0-9a-f]{64}$/);
  const listed = await cofferJson<ListedJson[]>(['snapshots', '-r', repo, '--vm', 'a'], opts);
  const salvaged = listed.find((s) => s.id === salvagedId);
  assert.deepEqual(salvaged?.tags, ['salvaged']);
  assert.equal(salvaged?.parent, result.snapshots[0]?.snapshot);
  const out = `${work}/salvaged.raw`;
  assertExit(await coffer(['restore', '-r', repo, salvagedId, '--to', out], opts), 0);
  const expected = Buffer.concat([shared.subarray(0, 3 * BLOCK), Buffer.alloc(BLOCK), shared.subarray(4 * BLOCK)]);
  assert.ok((await fs.readFile(out)).equals(expected), 'the salvaged disk is the original with the damaged block zeroed');

  // Run again (a scheduled repair): the same damage has its copy already, none is added.
  const again = await cofferJson<RepairJson>(['repair', '-r', repo, '--salvage'], opts);
  assert.equal(again.snapshots[0]?.salvagedAs, salvagedId);
  const relisted = await cofferJson<ListedJson[]>(['snapshots', '-r', repo, '--vm', 'a'], opts);
  assert.equal(relisted.length, listed.length, 'no second salvaged copy');
});

test('--forget removes the damaged snapshot; a later backup of the same data heals the mark', async () => {
  // Back up a's disk again under another name: the quarantined chunk is stored again...
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'a2', `${work}/a.raw`], opts), 0);
  assert.ok((await chunkIds(repo)).includes(victim), 'the damaged chunk was stored again');
  // ...so the damaged snapshot is whole again, and repair says so.
  const healed = await coffer(['repair', '-r', repo, '--read-data', '--json'], opts);
  assertExit(healed, 0);
  const out = JSON.parse(healed.stdout.toString('utf8')) as RepairJson;
  assert.equal(out.snapshots.length, 0);
  assert.equal(out.healed.length, 1);
  const listed = await cofferJson<ListedJson[]>(['snapshots', '-r', repo], opts);
  assert.ok(listed.every((s) => s.damage === undefined));

  // Damage it again and forget it.
  const file = chunkPath(repo, victim);
  await fs.writeFile(file, Buffer.from('not an envelope'));
  const forgot = await cofferJson<RepairJson>(['repair', '-r', repo, '--read-data', '--forget'], opts);
  assert.deepEqual(forgot.snapshots.map((s) => s.forgotten), [true, true], 'a and a2 both used the chunk');
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
});

test('a corrupt manifest blocks nothing: backups of every VM and latest go on; repair names it; forget by id or repair --forget removes it', async () => {
  const place = `${work}/manifest`;
  assertExit(await coffer(['init', '-r', place], opts), 0);
  for (const vm of ['x', 'y']) assertExit(await coffer(['backup', '-r', place, '--vm', vm, `${work}/b.raw`], opts), 0);
  const [broken] = await fs.readdir(`${place}/snapshots`);
  await fs.truncate(`${place}/snapshots/${broken}`, 100);
  await fs.cp(place, `${place}-copy`, { recursive: true });
  // Backups go on, the damaged VM's too (from its last readable snapshot, or none); latest skips it.
  for (const vm of ['x', 'y', 'z']) assertExit(await coffer(['backup', '-r', place, '--vm', vm, `${work}/a.raw`], opts), 0);
  assertExit(await coffer(['restore', '-r', place, 'latest', '--to', `${work}/latest.raw`], opts), 0);
  // repair names the manifest (exit 13), --forget removes it (exit 0), verify is clean after.
  const named = await coffer(['repair', '-r', place, '--json'], opts);
  assertExit(named, 13);
  const report = JSON.parse(named.stdout.toString('utf8')) as { unreadableManifests: { snapshot: string; forgotten: boolean }[] };
  assert.deepEqual(report.unreadableManifests.map((m) => [m.snapshot, m.forgotten]), [[broken, false]]);
  assertExit(await coffer(['repair', '-r', place, '--forget'], opts), 0);
  assertExit(await coffer(['verify', '-r', place], opts), 0);
  // On the copy: forget by its id prefix.
  const forgot = await coffer(['forget', '-r', `${place}-copy`, broken!.slice(0, 8)], opts);
  assertExit(forgot, 0);
  assert.match(forgot.stdout.toString('utf8'), /removed snapshot [0-9a-f]{8} \(its manifest is damaged\)/);
  assertExit(await coffer(['verify', '-r', `${place}-copy`], opts), 0);
});

test('a damaged index segment (format 2) is found by verify and repair (exit 13, naming repair --index), and repair --index heals it', async () => {
  const place = `${work}/segments`;
  assertExit(await coffer(['init', '-r', place], opts), 0);
  assertExit(await coffer(['backup', '-r', place, '--vm', 'x', `${work}/b.raw`], opts), 0);
  for (const name of await fs.readdir(`${place}/segments`)) await fs.truncate(`${place}/segments/${name}`, 50);
  const verified = await coffer(['verify', '-r', place], opts);
  assertExit(verified, 13);
  assert.match(verified.stdout.toString(), /DAMAGED segment [0-9a-f]{16}… \(corrupt\): .*'coffer repair --index' rebuilds the index from the packs/);
  const repaired = await coffer(['repair', '-r', place], opts);
  assertExit(repaired, 13);
  assert.match(repaired.stdout.toString(), /index segment\(s\) damaged .*: run 'coffer repair --index'/);
  assertExit(await coffer(['repair', '-r', place, '--index'], opts), 0);
  assertExit(await coffer(['verify', '-r', place, '--read-data'], opts), 0);
});
