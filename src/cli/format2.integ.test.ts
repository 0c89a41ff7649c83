/**
 * Repository format 2 through the `coffer` binary: `init --format 2`, a backup and its restore
 * byte for byte, verify, `repair --index`, and the commands that do not support packs yet
 * refusing with exit 19 and one line naming them.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertOneLineError, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

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

test('exit 19, one line: prune and sync refuse format 2', async () => {
  const other = join(work, 'other');
  await cofferJson(['init', '-r', other], { env });
  for (const [args, operation] of [
    [['prune', '-r', repo], 'prune'],
    [['sync', '-r', repo, '--to', other], 'sync'],
  ] as const) {
    const result = await coffer([...args] as string[], { env: { ...env, COFFER_TO_PASSWORD: 'pw' }, timeoutMs: 60_000 });
    assertExit(result, 19);
    assert.match(assertOneLineError(result), new RegExp(`^coffer: ${operation}.* does not support repository format 2`));
  }
});
