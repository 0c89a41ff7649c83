/**
 * `coffer test-restore` of a file snapshot (`backup --files`, what an agent stores): its tree
 * is walked and every file read back from the repository, as a restore would, and counted;
 * a chunk damaged after the backup fails the test restore (exit 15) naming the file. Before,
 * a file snapshot "PASSED in 0.0 s" having read nothing: no disk to read, no volume to walk.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TestRestoreReport } from '../restore/index.js';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertOneLineError, chunkIds, chunkPath, coffer, makeWorkDir, removeDir } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'test-restore files' };
let work: string;
let repo: string;
let tree: string;

before(async () => {
  work = await makeWorkDir('test-restore-files');
  repo = join(work, 'repo');
  tree = join(work, 'tree');
  await mkdir(join(tree, 'etc', 'app'), { recursive: true });
  await writeFile(join(tree, 'etc', 'app', 'app.conf'), 'listen = 8080\n');
  await writeFile(join(tree, 'big.bin'), seededBytes(7, 3 << 20));
  await symlink('etc/app/app.conf', join(tree, 'conf'));
  // Format 1 (one object per chunk): the test damages a chunk object.
  assertExit(await coffer(['init', '--format', '1', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--files', tree, '--host', 'files1'], { env }), 0);
});
after(() => removeDir(work));

async function testRestoreJson(expectedExit: number): Promise<TestRestoreReport> {
  const result = await coffer(['test-restore', '-r', repo, '--json', 'files1:latest'], { env });
  assertExit(result, expectedExit);
  return JSON.parse(result.stdout.toString('utf8')) as TestRestoreReport;
}

test('a file snapshot is read back whole: its folders, files and symlinks counted, every byte of file data read', async () => {
  const report = await testRestoreJson(0);
  assert.equal(report.passed, true, report.failures.join('\n'));
  assert.deepEqual(report.disks, []);
  assert.equal(report.volumes.length, 1);
  const [volume] = report.volumes;
  // The folders from / down to the tree's own (the snapshot keeps the backed-up path), then etc and etc/app.
  const folders = tree.split('/').filter((part) => part !== '').length + 3;
  assert.deepEqual([volume?.name, volume?.filesystem, volume?.directories, volume?.files, volume?.symlinks, volume?.bytesRead], ['files', 'coffer-files', folders, 2, 1, (3 << 20) + 'listen = 8080\n'.length]);
  const text = await coffer(['test-restore', '-r', repo, 'files1:latest'], { env });
  assertExit(text, 0);
  assert.match(text.stdout.toString('utf8'), /^files coffer-files: \d+ folders, 2 files, 1 symlinks, 3\.00 MiB of file data read$/m);
});

test('--boot of a file snapshot is a usage error: there is no VM to boot', async () => {
  const result = await coffer(['test-restore', '-r', repo, 'files1:latest', '--boot'], { env });
  assertExit(result, 2);
  assert.match(assertOneLineError(result), /holds files, not a VM's disks: there is nothing to boot/);
});

test('a chunk of a file damaged in the repository fails the test restore, naming the file', async () => {
  for (const id of await chunkIds(repo)) {
    const bytes = await readFile(chunkPath(repo, id));
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff; // the AEAD tag
    await writeFile(chunkPath(repo, id), bytes);
  }
  const report = await testRestoreJson(15);
  assert.equal(report.passed, false);
  assert.ok(report.volumes[0]?.problems.some((p) => p.startsWith(`${join(tree, 'big.bin')}:`)), report.volumes[0]?.problems.join('\n'));
  assert.match(report.failures.join('\n'), /^files: \d+ damaged file\(s\) or folder\(s\), the first: /m);
});
