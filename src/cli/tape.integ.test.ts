/**
 * `coffer tape export | import | list` through the binary, with GNU tar as the independent
 * reader: the stream lists and extracts with tar, the extracted folder is a repository that
 * verifies and restores, a tape alone rebuilds a repository, volumes span, and damage is
 * named. Two snapshots of a small disk (random data with holes, then a few changed blocks).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { flipByte, requireTools, seededBytes } from '../testing/index.js';
import {
  assertExit,
  assertOneLineError,
  assertSameBytes,
  coffer,
  cofferJson,
  makeWorkDir,
  removeDir,
  runTool,
  type BackupJson,
  type SnapshotJson,
  type VerifyJson,
} from './cli-harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const env = { env: { COFFER_PASSWORD: 'tape test passphrase' } };

interface ExportJson {
  tapeSet: string;
  snapshots: string[];
  volumes: { sequence: number; name: string; bytes: number; members: number }[];
  objects: number;
}
interface TapeIndexJson {
  tapeSet: string;
  sequence: number;
  final: boolean;
  volumes: number | null;
  snapshots: string[];
  members: { name: string; offset: number; size: number; sha256: string }[];
}

let work: string;
let repo: string;
let disk1: string;
let disk2: string;
let first: BackupJson;
let second: BackupJson;
let tape: string;

before(async () => {
  await requireTools('tar');
  work = await makeWorkDir('tape');
  // 8 MiB: 3 MiB of random data at 1 MiB (incompressible: 12 chunks of 256 KiB), holes elsewhere.
  const image = Buffer.alloc(8 * MiB);
  seededBytes(71, 3 * MiB).copy(image, 1 * MiB);
  disk1 = join(work, 'disk1.raw');
  await writeFile(disk1, image);
  seededBytes(72, 300 * KiB).copy(image, 5 * MiB + 1000); // two changed blocks, one of them a hole before
  disk2 = join(work, 'disk2.raw');
  await writeFile(disk2, image);
  repo = join(work, 'repo');
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  await cofferJson(['init', '--format', '1', '-r', repo], env);
  first = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'db', '--time', '2026-11-01T01:00:00Z', disk1], env);
  second = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'db', '--time', '2026-11-02T01:00:00Z', disk2], env);
  tape = join(work, 'set.tar');
  const exported = await cofferJson<ExportJson>(['tape', 'export', '-r', repo, first.id.slice(0, 8), 'db:latest', '--to', tape], env);
  assert.deepEqual(exported.snapshots, [first.id, second.id]);
  assert.equal(exported.volumes.length, 1);
});
after(() => removeDir(work));

/** The index member of a volume, as GNU tar extracts it. */
async function tapeIndex(volume: string): Promise<TapeIndexJson> {
  const result = await runTool('tar', ['-xOf', volume, 'COFFER-TAPE/index.json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as TapeIndexJson;
}

/** `tar -tvR`: each member's name, size and header block, as GNU tar reads them. */
async function tarListing(volume: string): Promise<{ name: string; size: number; offset: number }[]> {
  const result = await runTool('tar', ['--numeric-owner', '-tvRf', volume]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout
    .split('\n')
    .filter((line) => line.startsWith('block ') && !line.includes('** Block of NULs **') && !line.includes('End of File'))
    .map((line) => {
      const match = /^block (\d+): \S+ \S+\s+(\d+) \S+ \S+ (.+)$/.exec(line);
      assert.ok(match, `unexpected tar -tvR line: ${line}`);
      return { name: match[3] as string, size: Number(match[2]), offset: Number(match[1]) * 512 };
    });
}

async function restoreAndCompare(repository: string, snapshot: string, original: string): Promise<void> {
  const out = join(work, `restored-${snapshot.slice(0, 8)}-${Math.random().toString(16).slice(2)}.raw`);
  assertExit(await coffer(['restore', '-r', repository, snapshot, '--to', out], env), 0);
  await assertSameBytes(out, original);
}

test('GNU tar lists the tape: label first, index last, and the offsets, sizes and SHA-256 the index gives', async () => {
  const listing = await tarListing(tape);
  const index = await tapeIndex(tape);
  assert.equal(listing[0]?.name, 'COFFER-TAPE/label.json');
  assert.equal(listing.at(-1)?.name, 'COFFER-TAPE/index.json');
  assert.deepEqual(listing.slice(0, -1), index.members.map((m) => ({ name: m.name, size: m.size, offset: m.offset })));
  assert.equal(index.final, true);
  assert.equal(index.volumes, 1);
  assert.deepEqual(index.snapshots, [first.id, second.id]);
  // Each object once: the chunks the two snapshots share are not written twice.
  const names = index.members.map((m) => m.name);
  assert.equal(new Set(names).size, names.length);
  assert.ok(names.includes('config') && names.some((n) => n.startsWith('keys/')), 'config and keys are on the tape');
  assert.equal(names.filter((n) => n.startsWith('snapshots/')).length, 2);
  assert.equal(names.filter((n) => n.startsWith('chunks/')).length, 12 + 2, 'the 12 chunks of the first snapshot and the 2 the second changed');
  // The bytes of every member are the repository's object, as stored.
  for (const member of index.members.slice(1)) {
    const stored = await readFile(join(repo, member.name));
    assert.equal(createHash('sha256').update(stored).digest('hex'), member.sha256, member.name);
  }
  // Fixed records: the file is a whole number of 256 KiB records.
  const size = (await readFile(tape)).length;
  assert.equal(size % (256 * KiB), 0);
});

test('tar -x of the tape is a repository that verify --read-data and restore accept, byte for byte', async () => {
  const extracted = join(work, 'extracted');
  const result = await runTool('sh', ['-c', `mkdir -p '${extracted}' && tar -xf '${tape}' -C '${extracted}'`]);
  assert.equal(result.code, 0, result.stderr);
  const verify = await cofferJson<VerifyJson>(['verify', '-r', extracted, '--read-data'], env);
  assert.equal(verify.ok, true);
  assert.equal(verify.snapshots, 2);
  assert.equal(verify.chunksRead, 14);
  await restoreAndCompare(extracted, first.id, disk1);
  await restoreAndCompare(extracted, second.id, disk2);
});

test('tape import into a new empty repository restores byte for byte; the catalog names the tape; a second import adds nothing', async () => {
  const fresh = join(work, 'imported');
  const imported = await cofferJson<{ createdRepository: boolean; snapshots: { id: string; added: boolean }[] }>(['tape', 'import', '--from', tape, '-r', fresh], env);
  assert.equal(imported.createdRepository, true);
  assert.deepEqual(imported.snapshots, [{ id: first.id, added: true }, { id: second.id, added: true }]);
  await restoreAndCompare(fresh, first.id, disk1);
  await restoreAndCompare(fresh, 'db:latest', disk2);
  const again = await cofferJson<{ createdRepository: boolean; snapshots: { added: boolean }[]; objectsWritten: number }>(['tape', 'import', '--from', tape, '-r', fresh], env);
  assert.equal(again.createdRepository, false);
  assert.deepEqual(again.snapshots.map((s) => s.added), [false, false]);
  assert.equal(again.objectsWritten, 0);

  const tapeSet = (await tapeIndex(tape)).tapeSet;
  const source = await cofferJson<(SnapshotJson & { tapes?: { tapeSet: string; volumes: { sequence: number; name: string }[]; imported?: boolean }[] })[]>(['snapshots', '-r', repo], env);
  for (const s of source) assert.deepEqual(s.tapes?.map((t) => ({ tapeSet: t.tapeSet, volumes: t.volumes })), [{ tapeSet, volumes: [{ sequence: 1, name: tape }] }], s.id);
  const copy = await cofferJson<(SnapshotJson & { tapes?: { tapeSet: string; imported?: boolean }[] })[]>(['snapshots', '-r', fresh], env);
  assert.deepEqual(copy.map((s) => s.id), [first.id, second.id]);
  assert.equal(copy[0]?.tapes?.[0]?.tapeSet, tapeSet);
  assert.equal(copy[0]?.tapes?.[0]?.imported, true);
});

test('tape list reads label and index with no passphrase', async () => {
  const result = await coffer(['tape', 'list', '--from', tape, '--json']); // no COFFER_PASSWORD
  assertExit(result, 0);
  const [volume] = JSON.parse(result.stdout.toString('utf8')) as { label: { sequence: number }; final: boolean; snapshots: string[]; chunks: number }[];
  assert.equal(volume?.label.sequence, 1);
  assert.equal(volume?.final, true);
  assert.deepEqual(volume?.snapshots, [first.id, second.id]);
  assert.equal(volume?.chunks, 14);
});

test('--volume-size spans three volumes, each a tar archive of its own; import needs all three, and names the one missing', async () => {
  const base = join(work, 'multi.tar');
  const exported = await cofferJson<ExportJson>(['tape', 'export', '-r', repo, first.id, second.id, '--to', base, '--volume-size', '1536K'], env);
  assert.deepEqual(exported.volumes.map((v) => v.name), [1, 2, 3].map((n) => `${base}.${n}`));
  for (const volume of exported.volumes) {
    assert.ok(volume.bytes <= 1536 * KiB, `volume ${volume.sequence} is ${volume.bytes} bytes`);
    const listing = await tarListing(volume.name);
    assert.equal(listing[0]?.name, 'COFFER-TAPE/label.json');
    const index = await tapeIndex(volume.name);
    assert.equal(index.sequence, volume.sequence);
    assert.equal(index.final, volume.sequence === 3);
    assert.deepEqual(listing.slice(0, -1), index.members.map((m) => ({ name: m.name, size: m.size, offset: m.offset })));
  }
  const [v1, v2, v3] = exported.volumes.map((v) => v.name) as [string, string, string];

  const without2 = await coffer(['tape', 'import', '--from', `${v1},${v3}`, '-r', join(work, 'no-v2')], env);
  assertExit(without2, 2);
  assert.match(assertOneLineError(without2), /volume 2 of tape set [0-9a-f]{32} is missing/);
  assert.deepEqual(await readdir(work).then((names) => names.includes('no-v2')), false, 'nothing written when a volume is missing');

  const without3 = await coffer(['tape', 'import', '--from', v2, '--from', v1, '-r', join(work, 'no-v3')], env);
  assertExit(without3, 2);
  assert.match(assertOneLineError(without3), /volume 3 of tape set [0-9a-f]{32} is missing/);
  const none = await cofferJson<SnapshotJson[]>(['snapshots', '-r', join(work, 'no-v3')], env);
  assert.deepEqual(none, [], 'no snapshot becomes visible from an incomplete set');

  // tape list says the same of an incomplete set (it said nothing and exited 0), and exits 0 for the whole set.
  const listed = await coffer(['tape', 'list', '--from', `${v1},${v3}`]);
  assertExit(listed, 2);
  assert.match(listed.stdout.toString(), /every member read back/, 'the volumes given are still listed');
  assert.match(assertOneLineError(listed), /tape set [0-9a-f]{8} is incomplete: volume 2 is missing: tape import needs every volume of the set/);
  assert.match(assertOneLineError(await coffer(['tape', 'list', '--from', v1, '--json'])), /incomplete: the last volume is not among those given \(volume 1 is not the last\)/);
  assertExit(await coffer(['tape', 'list', '--from', `${v2},${v3},${v1}`]), 0);
  // A volume twice (a copy of its file, or the same file named again): import refuses it, so list says so.
  const copyOf2 = join(work, 'volume-2-copy.tar');
  await copyFile(v2, copyOf2);
  const doubled = await coffer(['tape', 'list', '--from', `${v1},${v2},${v3},${copyOf2}`]);
  assertExit(doubled, 2);
  assert.match(assertOneLineError(doubled), new RegExp(`tape set [0-9a-f]{8} cannot be imported as given: volume 2 is given twice \\(${v2} and ${copyOf2}\\): tape import needs every volume of the set`));
  assertExit(await coffer(['tape', 'import', '--from', `${v1},${v2},${v3},${copyOf2}`, '-r', join(work, 'doubled')], env), 2);
  await rm(copyOf2);

  const whole = join(work, 'from-three');
  await cofferJson(['tape', 'import', '--from', `${v3},${v1},${v2}`, '-r', whole], env); // any order
  await restoreAndCompare(whole, first.id, disk1);
  await restoreAndCompare(whole, second.id, disk2);
});

test('an export refused part-way (a volume too small for a chunk) leaves no volume file behind', async () => {
  const base = join(work, 'too-small.tar');
  const refused = await coffer(['tape', 'export', '-r', repo, first.id, '--to', base, '--block-size', '512', '--volume-size', '16K'], env);
  assertExit(refused, 2);
  assert.match(assertOneLineError(refused), /a volume of 16384 bytes cannot hold/);
  assert.deepEqual((await readdir(work)).filter((name) => name.startsWith('too-small.tar')), [], 'no partial volume');
});

test('--overwrite replaces a tape only once the new one is complete: a failed export keeps the old file', async () => {
  const weekly = join(work, 'weekly.tar');
  await cofferJson(['tape', 'export', '-r', repo, first.id, '--to', weekly], env);
  const before = await readFile(weekly);
  // A repository that lost its packs fails the export once the tape is being written: the old tape is left as it was.
  const damaged = join(work, 'lost-packs');
  await cp(repo, damaged, { recursive: true });
  for (const data of ['packs', 'chunks']) await rm(join(damaged, data), { recursive: true, force: true });
  const refused = await coffer(['tape', 'export', '-r', damaged, first.id, '--to', weekly, '--overwrite'], env);
  assertExit(refused, 11);
  assert.deepEqual(await readFile(weekly), before, 'the old tape is untouched');
  assert.deepEqual((await readdir(work)).filter((name) => name.includes('weekly.tar') && name !== 'weekly.tar'), [], 'no temporary file left');
  // A complete export replaces it.
  await cofferJson(['tape', 'export', '-r', repo, second.id, '--to', weekly, '--overwrite'], env);
  assert.notDeepEqual(await readFile(weekly), before);
  assert.deepEqual((await tapeIndex(weekly)).snapshots, [second.id]);
  assert.deepEqual((await readdir(work)).filter((name) => name.includes('weekly.tar') && name !== 'weekly.tar'), []);
});

test('a corrupted byte in a chunk member is refused at import and by tape list, naming the member', async () => {
  const index = await tapeIndex(tape);
  const chunks = index.members.filter((m) => m.name.startsWith('chunks/'));
  // The first chunk (found while later members are read) and the last (found as the volume ends).
  for (const [which, chunk] of [['first', chunks[0]], ['last', chunks.at(-1)]] as const) {
    assert.ok(chunk);
    const damaged = join(work, `damaged-${which}.tar`);
    await copyFile(tape, damaged);
    await flipByte(damaged, chunk.offset + 512 + 1000, 0x40); // inside the member's data, past its header
    const target = join(work, `from-damaged-${which}`);
    const imported = await coffer(['tape', 'import', '--from', damaged, '-r', target], env);
    assertExit(imported, 11);
    const line = assertOneLineError(imported);
    assert.ok(line.includes(`member ${chunk.name} at offset ${chunk.offset}`), `${which}: ${line}`);
    assert.match(line, /corrupt: authentication failed/);
    const none = await cofferJson<SnapshotJson[]>(['snapshots', '-r', target], env);
    assert.deepEqual(none, [], 'no snapshot from a damaged tape');

    const listed = await coffer(['tape', 'list', '--from', damaged]);
    assertExit(listed, 11);
    const listLine = assertOneLineError(listed);
    assert.ok(listLine.includes(chunk.name) && listLine.includes('sha256'), listLine);
  }
});

test('a file that is not a tape, and a volume of another set, are refused in one line', async () => {
  const notTape = await coffer(['tape', 'list', '--from', disk1]);
  assertExit(notTape, 11);
  assert.match(assertOneLineError(notTape), /not a Coffer tape volume|not a readable tar archive/);
  const other = join(work, 'other.tar');
  await cofferJson(['tape', 'export', '-r', repo, first.id, '--to', other], env);
  const mixed = await coffer(['tape', 'import', '--from', `${tape},${other}`, '-r', join(work, 'mixed')], env);
  assertExit(mixed, 11);
  assert.match(assertOneLineError(mixed), /belongs to tape set/);
  const usage: [string[], RegExp][] = [
    [['tape', 'export', '-r', repo, 'latest', '--to', join(work, 'u.tar'), '--block-size', '1000'], /--block-size 1000 must be a multiple of 512/],
    [['tape', 'export', '-r', repo, 'latest', '--to', join(work, 'u.tar'), '--volume-size', '100K'], /--volume-size must hold at least 4 records/],
    [['tape', 'export', '-r', repo, 'latest'], /needs --to/],
    [['tape', 'import', '-r', join(work, 'u')], /--from/],
    [['tape', 'list', '--from', join(work, 'absent.tar')], /no tape volume at/],
    [['tape', 'export', '-r', repo, 'latest', '--to', tape], /exists: remove it or add --overwrite/],
  ];
  for (const [args, message] of usage) {
    const result = await coffer(args, env);
    assertExit(result, args.includes(tape) ? 4 : 2);
    assert.match(assertOneLineError(result), message);
  }
});

test('a snapshot forgotten and pruned comes back from the tape into its own repository; another repository and a wrong passphrase are refused', async () => {
  const own = join(work, 'own');
  const copied = await runTool('cp', ['-a', repo, own]);
  assert.equal(copied.code, 0, copied.stderr);
  assertExit(await coffer(['forget', '-r', own, second.id], env), 0);
  assertExit(await coffer(['prune', '-r', own], env), 0);
  // The media catalog outlives the snapshot: it says which tape to import it back from.
  const catalog = await cofferJson<{ snapshot: string; vm: string | null; inRepository: boolean; volumes: { name: string }[] }[]>(['tape', 'catalog', '-r', own], env);
  const entry = catalog.find((e) => e.snapshot === second.id);
  assert.equal(entry?.inRepository, false);
  assert.equal(entry?.vm, 'db');
  assert.deepEqual(entry?.volumes.map((v) => v.name), [tape]);
  assert.equal(catalog.find((e) => e.snapshot === first.id)?.inRepository, true);
  const back = await cofferJson<{ createdRepository: boolean; snapshots: { id: string; added: boolean }[]; objectsWritten: number }>(['tape', 'import', '--from', tape, '-r', own], env);
  assert.equal(back.createdRepository, false);
  assert.deepEqual(back.snapshots, [{ id: first.id, added: false }, { id: second.id, added: true }]);
  assert.ok(back.objectsWritten >= 3 && back.objectsWritten < 10, `${back.objectsWritten} objects written: only what the prune removed`);
  await restoreAndCompare(own, second.id, disk2);

  const other = join(work, 'other-repo');
  await cofferJson(['init', '--format', '1', '-r', other], { env: { COFFER_PASSWORD: 'another passphrase' } }); // refused for what it is, not for the passphrase
  const refused = await coffer(['tape', 'import', '--from', tape, '-r', other], env);
  assertExit(refused, 2);
  assert.match(assertOneLineError(refused), /the tape holds repository [0-9a-f]{32}: import into an empty folder or into that repository/);

  const wrong = await coffer(['tape', 'import', '--from', tape, '-r', join(work, 'wrong-pass')], { env: { COFFER_PASSWORD: 'not it' } });
  assertExit(wrong, 12);
  assertOneLineError(wrong);
  assert.equal((await readdir(work)).includes('wrong-pass'), false, 'a wrong passphrase writes nothing');
});

test('an unencrypted repository goes to tape and back without any passphrase', async () => {
  const plain = join(work, 'plain');
  await cofferJson(['init', '--format', '1', '-r', plain, '--insecure-no-encryption'], {});
  const snapshot = await cofferJson<BackupJson>(['backup', '-r', plain, '--vm', 'db', disk2], {});
  const out = join(work, 'plain.tar');
  await cofferJson(['tape', 'export', '-r', plain, snapshot.id, '--to', out, '--block-size', '10K'], {});
  assert.equal((await readFile(out)).length % (10 * KiB), 0, 'records of 10 KiB, as GNU tar writes by default');
  const copy = join(work, 'plain-copy');
  await cofferJson(['tape', 'import', '--from', out, '-r', copy], {});
  await restoreAndCompare(copy, snapshot.id, disk2);
});

test('on a character device every volume goes to the device, each after the new-volume command loaded the next tape', async () => {
  // /dev/null stands in for /dev/nst0: the device path (one write per record, no FILE.N
  // names, the command between volumes) without tape semantics, which no test here has.
  const log = join(work, 'changer.log');
  const exported = await cofferJson<ExportJson>(
    ['tape', 'export', '-r', repo, first.id, second.id, '--to', '/dev/null', '--volume-size', '1536K', '--new-volume-command', `echo "load $COFFER_TAPE_VOLUME into $COFFER_TAPE_DEVICE" >> '${log}'`],
    env,
  );
  assert.deepEqual(exported.volumes.map((v) => [v.sequence, v.name]), [[1, '/dev/null'], [2, '/dev/null'], [3, '/dev/null']]);
  assert.equal(await readFile(log, 'utf8'), 'load 2 into /dev/null\nload 3 into /dev/null\n');

  const noChanger = await coffer(['tape', 'export', '-r', repo, first.id, '--to', '/dev/null', '--volume-size', '1536K'], env);
  assertExit(noChanger, 2);
  assert.match(assertOneLineError(noChanger), /needs volume 2 on \/dev\/null: give --new-volume-command to load the next tape/);
  const failing = await coffer(['tape', 'export', '-r', repo, first.id, '--to', '/dev/null', '--volume-size', '1536K', '--new-volume-command', 'exit 3'], env);
  assertExit(failing, 4);
  assert.match(assertOneLineError(failing), /new-volume command "exit 3" failed \(exit 3\) before volume 2/);
});
