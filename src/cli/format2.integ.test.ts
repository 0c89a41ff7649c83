/**
 * Repository format 2 through the `coffer` binary: `init --format 2`, a backup and its restore
 * byte for byte, verify, `repair --index`, the move of a format 1 repository by `coffer sync`,
 * and the commands that do not support packs yet
 * refusing with exit 19 and one line naming them.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

const KiB = 1024;
const env = { COFFER_PASSWORD: 'pw' };
let work: string;
let repo: string;
let image: string;

before(async () => {
  work = await makeWorkDir('format2');
  repo = join(work, 'repo');
  image = join(work, 'disk.raw');
  await writeFile(image, Buffer.concat([seededBytes(21, 700 * KiB), Buffer.alloc(300 * KiB), Buffer.from('text '.repeat(100_000))]));
});
after(() => removeDir(work));

test('coffer init --format 2, backup, restore byte for byte, verify --read-data, repair --index', async () => {
  const init = await cofferJson<{ format: number }>(['init', '-r', repo, '--format', '2', '--block-size', '64K'], { env });
  assert.equal(init.format, 2);
  const backup = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm', image], { env });
  assert.ok(backup.bytesStored < backup.bytesNew);
  assert.deepEqual(await readdir(join(repo, 'chunks')).catch(() => []), []);
  assert.equal((await readdir(join(repo, 'packs'), { recursive: true })).filter((name) => /[0-9a-f]{64}$/.test(name)).length, 1);
  const out = join(work, 'restored.raw');
  assertExit(await coffer(['restore', '-r', repo, 'vm:latest', '--to', out], { env }), 0);
  await assertSameBytes(out, image);
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], { env }), 0);
  const repaired = await coffer(['repair', '-r', repo, '--index'], { env });
  assertExit(repaired, 0);
  assert.match(repaired.stdout.toString(), /rebuilt the index from 1 pack\(s\): \d+ chunk\(s\) in 1 segment\(s\), 0 old segment\(s\) removed/); // the same entries make the same segment
});

test('coffer sync moves a format 1 repository to format 2: restores byte for byte, verify --read-data passes, a second sync copies nothing', async () => {
  const old = join(work, 'old-v1');
  const moved = join(work, 'moved-v2');
  await cofferJson(['init', '-r', old, '--block-size', '64K'], { env });
  await cofferJson(['init', '-r', moved, '--format', '2'], { env: { COFFER_PASSWORD: 'other' } });
  const backup = await cofferJson<BackupJson>(['backup', '-r', old, '--vm', 'vm', image], { env });
  const toEnv = { ...env, COFFER_TO_PASSWORD: 'other' };
  const first = await cofferJson<{ copied: number; packsWritten: number }>(['sync', '-r', old, '--to', moved], { env: toEnv, timeoutMs: 60_000 });
  assert.deepEqual([first.copied, first.packsWritten > 0], [1, true]);
  const out = join(work, 'migrated.raw');
  assertExit(await coffer(['restore', '-r', moved, 'vm:latest', '--to', out], { env: { COFFER_PASSWORD: 'other' } }), 0);
  await assertSameBytes(out, image);
  assertExit(await coffer(['verify', '-r', moved, '--read-data'], { env: { COFFER_PASSWORD: 'other' } }), 0);
  const second = await cofferJson<{ copied: number; present: number; chunksSent: number }>(['sync', '-r', old, '--to', moved], { env: toEnv, timeoutMs: 60_000 });
  assert.deepEqual([second.copied, second.present, second.chunksSent], [0, 1, 0]);
  assert.ok(backup.bytesNew > 0);
});

test('sync copies a file snapshot into format 2 together with the disk snapshots (it was refused with exit 19 until 2026-11-26)', async () => {
  const withFiles = join(work, 'files-v1');
  await cofferJson(['init', '-r', withFiles], { env });
  await mkdir(join(work, 'files'));
  await writeFile(join(work, 'files', 'a'), 'a');
  assertExit(await coffer(['backup', '-r', withFiles, '--files', join(work, 'files')], { env }), 0);
  await cofferJson<BackupJson>(['backup', '-r', withFiles, '--vm', 'disk-vm', image], { env });
  const result = await coffer(['sync', '-r', withFiles, '--to', repo], { env: { ...env, COFFER_TO_PASSWORD: env.COFFER_PASSWORD as string }, timeoutMs: 60_000 });
  assertExit(result, 0);
  assert.match(String(result.stdout), /2 snapshot\(s\) copied, 0 already there, 0 failed/);
  assert.match(String(result.stdout), /file snapshots: sent [1-9]\d* tree\(s\)/);
  const copied = await cofferJson<{ id: string; vm: string }[]>(['snapshots', '-r', repo, '--vm', 'disk-vm'], { env });
  assert.equal(copied.length, 1, 'the disk snapshot was copied');
});
