/**
 * Black-box repository management through the `coffer` binary: passphrases (key add, list,
 * remove, passwd) and snapshot references (`latest`, `NAME:latest`, prefixes) with forget.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertOneLineError, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson, type SnapshotJson } from './cli-harness.js';

const KiB = 1024;

let work: string;
before(async () => {
  work = await makeWorkDir('manage');
});
after(() => removeDir(work));

/** A raw image of `size` seeded bytes. */
async function image(name: string, seed: number, size = 192 * KiB): Promise<string> {
  const path = join(work, name);
  await writeFile(path, seededBytes(seed, size));
  return path;
}

interface KeyJson {
  id: string;
  current: boolean;
}

test('key add, list, remove and passwd: every passphrase opens what it should, and only that', async () => {
  const repo = join(work, 'keys-repo');
  const disk = await image('keys.raw', 1);
  const one = { COFFER_PASSWORD: 'passphrase one' };
  const two = { COFFER_PASSWORD: 'passphrase two' };
  const three = { COFFER_PASSWORD: 'passphrase three' };
  const opens = async (env: Record<string, string>) => (await coffer(['snapshots', '-r', repo], { env })).code;

  await cofferJson(['init', '-r', repo, '--block-size', '64K'], { env: one });
  const snapshot = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'k', disk], { env: one });
  assert.equal(await opens(two), 12);

  const added = await cofferJson<{ added: string }>(['key', 'add', '-r', repo], { env: { ...one, COFFER_NEW_PASSWORD: two.COFFER_PASSWORD } });
  assert.equal(await opens(one), 0);
  assert.equal(await opens(two), 0);
  assert.equal(await opens(three), 12);

  const listedByOne = await cofferJson<KeyJson[]>(['key', 'list', '-r', repo], { env: one });
  assert.equal(listedByOne.length, 2);
  const keyOne = listedByOne.find((k) => k.current)!;
  assert.ok(keyOne !== undefined && keyOne.id !== added.added);
  assert.deepEqual(listedByOne.filter((k) => !k.current).map((k) => k.id), [added.added]);
  const listedByTwo = await cofferJson<KeyJson[]>(['key', 'list', '-r', repo], { env: two });
  assert.deepEqual(listedByTwo.filter((k) => k.current).map((k) => k.id), [added.added]);

  // The key in use cannot be removed: that would lock out whoever is typing.
  const refused = await coffer(['key', 'remove', keyOne.id, '-r', repo], { env: one });
  assertExit(refused, 2);
  assert.match(assertOneLineError(refused), /in use/);
  assert.equal(await opens(one), 0);

  // passwd with a new passphrase from a file: one stops working, three works, two is untouched.
  const file = join(work, 'new-passphrase');
  await writeFile(file, `${three.COFFER_PASSWORD}\n`);
  assertExit(await coffer(['key', 'passwd', '-r', repo, '--new-password-file', file], { env: one }), 0);
  assert.equal(await opens(one), 12);
  assert.equal(await opens(three), 0);
  assert.equal(await opens(two), 0);
  const afterPasswd = await cofferJson<KeyJson[]>(['key', 'list', '-r', repo], { env: three });
  assert.equal(afterPasswd.length, 2);
  assert.ok(!afterPasswd.some((k) => k.id === keyOne.id), 'the old key file is still there');

  // Another passphrase's key can be removed; the last one cannot.
  assertExit(await coffer(['key', 'remove', added.added.slice(0, 6), '-r', repo], { env: three }), 0);
  assert.equal(await opens(two), 12);
  const last = (await cofferJson<KeyJson[]>(['key', 'list', '-r', repo], { env: three }))[0]!;
  assertExit(await coffer(['key', 'remove', last.id, '-r', repo], { env: three }), 2);
  assert.equal(await opens(three), 0);

  // The data never depended on the passphrase.
  const out = join(work, 'keys-out.raw');
  assertExit(await coffer(['restore', '-r', repo, snapshot.id, '--to', out], { env: three }), 0);
  await assertSameBytes(out, disk);
});

test('latest and NAME:latest pick the newest capture time; forget removes exactly what it names', async () => {
  const repo = join(work, 'refs-repo');
  const env = { env: { COFFER_PASSWORD: 'pw' } };
  const disks = { aNew: await image('a-new.raw', 21), aOld: await image('a-old.raw', 22), b: await image('b.raw', 23) };
  await cofferJson(['init', '-r', repo, '--block-size', '64K'], env);
  // Made out of time order: the newest capture of VM a is backed up first.
  const aNew = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'a', '--time', '2024-05-03T00:00:00Z', disks.aNew], env);
  const aOld = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'a', '--time', '2024-05-01T00:00:00Z', disks.aOld], env);
  const b = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'b', '--time', '2024-05-02T00:00:00Z', disks.b], env);

  const restoresAs = async (reference: string, expected: string) => {
    const result = await coffer(['restore', '-r', repo, reference, '--to', '-'], env);
    assertExit(result, 0);
    await assertSameBytes(result.stdout, expected, `restore ${reference}`);
  };
  await restoresAs('a:latest', disks.aNew);
  await restoresAs('b:latest', disks.b);
  await restoresAs('latest', disks.aNew);
  await restoresAs(aOld.id.slice(0, 4), disks.aOld);
  await restoresAs(aOld.id.slice(0, 12).toUpperCase(), disks.aOld); // copied in capitals from a report

  const listed = await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], env);
  assert.deepEqual(listed.map((s) => s.id), [aOld.id, b.id, aNew.id], 'oldest capture first');
  const onlyA = await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo, '--vm', 'a'], env);
  assert.deepEqual(onlyA.map((s) => s.id), [aOld.id, aNew.id]);

  const forgot = await cofferJson<{ removed: { id: string }[] }>(['forget', '-r', repo, aNew.id.slice(0, 10)], env);
  assert.deepEqual(forgot.removed.map((r) => r.id), [aNew.id]);
  const left = await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], env);
  assert.deepEqual(left.map((s) => s.id), [aOld.id, b.id]);
  await restoresAs('a:latest', disks.aOld);
  await restoresAs('latest', disks.b);
  const gone = await coffer(['restore', '-r', repo, aNew.id, '--to', '-'], env);
  assertExit(gone, 2);
  assert.equal(gone.stdout.length, 0);

  // forget by NAME:latest, and a restore --overwrite onto a larger file truncates it to the disk.
  assertExit(await coffer(['forget', '-r', repo, 'b:latest'], env), 0);
  assert.deepEqual((await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], env)).map((s) => s.id), [aOld.id]);
  const target = join(work, 'overwrite.raw');
  await writeFile(target, seededBytes(99, 1024 * KiB));
  assertExit(await coffer(['restore', '-r', repo, 'latest', '--to', target, '--overwrite'], env), 0);
  await assertSameBytes(target, disks.aOld, 'restore --overwrite');
});
