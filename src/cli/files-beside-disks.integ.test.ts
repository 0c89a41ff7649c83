/**
 * File snapshots and disk snapshots under one name (`backup --files --host web01` beside
 * `backup --vm web01`, as the README's quickstart does): each kind keeps working as if the
 * other were not there.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson, type ForgetPolicyJson } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'files beside disks' };
let work: string;
let repo: string;

before(async () => {
  work = await makeWorkDir('files-beside-disks');
  repo = `${work}/repo`;
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
});
after(() => removeDir(work));

test('a disk backup compares with the VM\'s last disk snapshot, not with a file snapshot of the same name taken since', async () => {
  const disk = `${work}/web01.raw`;
  await fs.writeFile(disk, seededBytes(41, 8 << 20));
  await fs.mkdir(`${work}/etc`);
  await fs.writeFile(`${work}/etc/hosts`, '127.0.0.1 localhost\n');
  const first = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web01', '--no-cache', disk], { env });
  const files = await cofferJson<BackupJson>(['backup', '-r', repo, '--files', '--host', 'web01', `${work}/etc`], { env });
  const second = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web01', '--no-cache', disk], { env });
  assert.notEqual(files.id, first.id);
  assert.equal(second.parent, first.id, `the parent must be the disk snapshot ${first.id.slice(0, 8)}, not the file snapshot ${files.id.slice(0, 8)}`);
  // The image did not change since its parent read it: nothing is read again.
  assert.equal(second.bytesRead, 0, `an unchanged image read ${second.bytesRead} bytes`);
});

test('forget --keep-* applies the policy to a VM\'s disk snapshots apart from the file snapshots under its name', async () => {
  const own = `${work}/retention`;
  assertExit(await coffer(['init', '-r', own], { env }), 0);
  const disk = `${work}/web01.raw`;
  const diskSnapshot = await cofferJson<BackupJson>(['backup', '-r', own, '--vm', 'web01', disk], { env });
  // The README's nightly: the disk backup, then a file backup of the same machine.
  const fileSnapshots: string[] = [];
  for (const line of ['one', 'two']) {
    await fs.writeFile(`${work}/etc/motd`, `${line}\n`);
    fileSnapshots.push((await cofferJson<BackupJson>(['backup', '-r', own, '--files', '--host', 'web01', `${work}/etc`], { env })).id);
  }
  const plan = await cofferJson<ForgetPolicyJson>(['forget', '-r', own, '--keep-last', '1', '--dry-run'], { env });
  const kept = plan.vms.flatMap((group) => group.snapshots.filter((s) => s.keep).map((s) => s.id));
  assert.ok(kept.includes(diskSnapshot.id), `the only disk snapshot of web01 would be removed: ${JSON.stringify(plan.vms)}`);
  assert.deepEqual(plan.removed.map((s) => s.id), [fileSnapshots[0]], 'the older file snapshot goes, the newer one stays');
  const groups = plan.vms as (ForgetPolicyJson['vms'][number] & { files?: { paths: string[] } })[];
  assert.deepEqual(groups.map((g) => [g.vm, g.files?.paths]), [['web01', undefined], ['web01', [`${work}/etc`]]]);
});
