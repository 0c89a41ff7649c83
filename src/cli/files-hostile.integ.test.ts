/**
 * A guest's disk is untrusted: a crafted ext4 (names with `/` and `..`, an escaping symlink,
 * a directory loop, an inode and an extent out of range), backed up and extracted through
 * `coffer files`, writes nothing outside `--to DIR`, reports each bad entry, and restores
 * the rest.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildHostileExtImage, requireTools } from '../testing/index.js';
import { assertExit, coffer, makeWorkDir, removeDir } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'hostile' };
let work: string;
let repo: string;

before(async () => {
  await requireTools('mke2fs', 'debugfs');
  work = await makeWorkDir('files-hostile');
  repo = join(work, 'repo');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'hostile', await buildHostileExtImage()], { env }), 0);
});
after(() => removeDir(work));

test('extracting a hostile ext4 stays inside the folder and reports each bad entry', async () => {
  const jail = join(work, 'jail');
  const to = join(jail, 'out');
  await mkdir(jail);
  const result = await coffer(['files', '-r', repo, 'hostile:latest', 'get', 'disk:/', '--to', to, '--json'], { env });
  assertExit(result, 14);
  assert.deepEqual(await readdir(jail), ['out'], 'nothing next to the target folder');
  const report = JSON.parse(result.stdout.toString('utf8')) as { problems: { path: string; message: string }[]; renamed: { path: string; as: string }[] };
  const problems = report.problems.map((p) => `${p.path}: ${p.message}`).join('\n');
  assert.match(problems, /\/\.\.: an entry named "\.\." is refused/);
  assert.match(problems, /\/oor: /);
  assert.match(problems, /directory loop/);
  assert.match(problems, /\/bad-extent\.bin: /);
  assert.deepEqual(report.renamed, [{ path: '/slash/name', as: 'slash%2Fname' }]);
  assert.equal(await readFile(join(to, 'a/b/victim.txt'), 'utf8'), 'hi\n');
  assert.equal(await readlink(join(to, 'a/b/escape')), '../../../../etc/passwd', 'the link is kept as a link, never followed');
  assert.ok((await lstat(join(to, 'slash%2Fname'))).isFile());
  assert.ok(!(await readdir(to)).includes('bad-extent.bin'), 'a file that could not be read is not left half-written');
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
});

test('listing a hostile directory shows the good entries and names the bad one', async () => {
  const result = await coffer(['files', '-r', repo, 'hostile:latest', 'ls', 'disk:/'], { env });
  assertExit(result, 14);
  const names = result.stdout.toString('utf8').split('\n').filter(Boolean);
  for (const name of ['a/', 'slash/name', '../', 'bad-extent.bin']) assert.ok(names.includes(name) || names.includes(name.replace(/\/$/, '')), `${name} listed: ${names.join(', ')}`);
  assert.match(result.stderr, /^coffer: oor: /m);
});
