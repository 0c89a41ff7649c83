/**
 * `verify` and `repair` on a repository that takes no writes (a read-only mount of an offsite
 * copy, WORM storage): the findings are reported with their exit code, and a warning says
 * they could not be recorded. Before, the first write of a quarantine marker or of the
 * verification record failed the command (exit 1) and the damage it had found was never shown.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTools, runTool, seededBytes } from '../testing/index.js';
import { assertExit, coffer, makeWorkDir, removeDir } from './cli-harness.js';

const opts = { env: { COFFER_PASSWORD: 'read-only test' }, timeoutMs: 120_000 };
let work: string;
let healthy: string;
let damaged: string;
const mounted: string[] = [];

/** Makes `dir` read-only in place: a read-only bind mount of itself. */
async function readOnly(dir: string): Promise<void> {
  await runTool('mount', ['--bind', dir, dir]);
  mounted.push(dir);
  await runTool('mount', ['-o', 'remount,ro,bind', dir]);
}

before(async () => {
  await requireTools('mount', 'umount');
  work = await makeWorkDir('verify-ro');
  await fs.writeFile(join(work, 'disk.raw'), seededBytes(31, 1024 * 1024));
  healthy = join(work, 'healthy');
  damaged = join(work, 'damaged');
  for (const repo of [healthy, damaged]) {
    assertExit(await coffer(['init', '-r', repo, '--format', '1', '--block-size', '64K'], opts), 0);
    assertExit(await coffer(['backup', '-r', repo, '--vm', 'vm1', join(work, 'disk.raw')], opts), 0);
  }
  const [folder] = await fs.readdir(join(damaged, 'chunks'));
  await fs.rm(join(damaged, 'chunks', folder!), { recursive: true });
  await readOnly(healthy);
  await readOnly(damaged);
});

after(async () => {
  for (const dir of mounted.reverse()) await runTool('umount', [dir]).catch(() => undefined);
  await removeDir(work);
});

test('verify --read-data of a healthy read-only repository: exit 0, every chunk read, a warning that nothing was recorded', async () => {
  const result = await coffer(['verify', '-r', healthy, '--read-data'], opts);
  assertExit(result, 0);
  assert.match(result.stdout.toString(), /read and checked \d+ chunks[\s\S]*no errors were found/);
  assert.match(result.stderr.toString(), /^warning: the result could not be recorded in the repository \(.*the filesystem is read-only \(EROFS\)\); what is reported above stands\n$/);
});

test('verify and repair of a damaged read-only repository: the damage is reported, exit 13', async () => {
  const verified = await coffer(['verify', '-r', damaged], opts);
  assertExit(verified, 13);
  assert.match(verified.stdout.toString(), /DAMAGED chunk [\s\S]*AFFECTED snapshot [0-9a-f]{8} \(vm vm1/);
  assert.match(verified.stderr.toString(), /could not be recorded .* no damaged chunk was set aside/);
  const repaired = await coffer(['repair', '-r', damaged, '--json'], opts);
  assertExit(repaired, 13);
  const report = JSON.parse(repaired.stdout.toString()) as { damaged: unknown[]; notRecorded: string };
  assert.ok(report.damaged.length > 0);
  assert.match(report.notRecorded, /the filesystem is read-only \(EROFS\)/);
  assert.match(repaired.stderr.toString(), /repair cannot write to the repository .*: nothing was marked, salvaged or forgotten/);
});

test('a backup into a read-only repository says so in words, with no system message', async () => {
  const result = await coffer(['backup', '-r', healthy, '--vm', 'vm2', join(work, 'disk.raw')], opts);
  assertExit(result, 1);
  assert.match(result.stderr.toString(), /cannot (write|mkdir) .*: the filesystem is read-only \(EROFS\)/);
  assert.doesNotMatch(result.stderr.toString(), /EROFS: read-only file system|^\s+at /m);
});
