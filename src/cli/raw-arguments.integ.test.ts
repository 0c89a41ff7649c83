/**
 * Paths typed on the command line with bytes that are not UTF-8 (a Latin-1 `caf\xe9` from
 * the shell): Node turns such bytes into U+FFFD, which names nothing; `coffer` takes them from
 * /proc/self/cmdline (cli/raw-arguments.ts). End to end as `coffer` processes given the exact
 * bytes through /bin/sh: a file backup of such a folder with an exclude naming such a file, a
 * file snapshot restored into such a folder, and `files get --to` such a folder, each created
 * with the exact bytes; messages print them as `\xNN`.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { assertExit, coffer, cofferWithBytes, makeWorkDir, removeDir } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'raw arguments' };
const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');
let work: string;
let repo: string;
/** `work/caf\xe9`, as bytes. */
let folder: Buffer;

const under = (root: string | Buffer, ...names: string[]): Buffer => Buffer.concat([Buffer.isBuffer(root) ? root : Buffer.from(root), ...names.flatMap((n) => [Buffer.from('/'), latin1(n)])]);

before(async () => {
  work = await makeWorkDir('raw-args');
  repo = join(work, 'repo');
  folder = under(work, 'caf\xe9');
  await fs.mkdir(folder);
  await fs.writeFile(under(folder, 'r\xe9sum\xe9.txt'), 'kept\n');
  await fs.writeFile(under(folder, 'skip\xe9.tmp'), 'excluded\n');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
});
after(() => removeDir(work));

test('backup --files of a folder typed as its bytes, with an exclude typed as bytes: backed up, listed, the summary prints \\xNN', async () => {
  const backup = await cofferWithBytes(['backup', '-r', repo, '--files', '--host', 'fileserver', '--exclude', latin1('skip\xe9.tmp'), folder], { env });
  assertExit(backup, 0);
  assert.match(backup.stdout.toString('utf8'), /caf\\xe9: \d+ entries, 5 B,/, 'the excluded file not read');
  const listing = await cofferWithBytes(['files', '-r', repo, 'fileserver:latest', 'ls', folder], { env });
  assertExit(listing, 0);
  assert.deepEqual(listing.stdout.toString('utf8').split('\n').filter(Boolean), ['r\\xe9sum\\xe9.txt']);
});

test('restore of a file snapshot into a folder typed as its bytes creates that folder, by its bytes', async () => {
  const target = under(work, 'restaur\xe9');
  const restored = await cofferWithBytes(['restore', '-r', repo, 'fileserver:latest', '--to', target], { env });
  assertExit(restored, 0);
  assert.match(restored.stdout.toString('utf8'), /to .*restaur\\xe9: 1 files/);
  assert.equal(await fs.readFile(Buffer.concat([target, folder, under('', 'r\xe9sum\xe9.txt')]), 'utf8'), 'kept\n');
  const names = (await fs.readdir(work, { encoding: 'buffer' })).map((n) => n.toString('hex'));
  assert.ok(!names.some((n) => n.includes('efbfbd')), 'no name with U+FFFD was made');
});

test('files get --to a folder typed as its bytes', async () => {
  const target = under(work, 'extrait\xe9');
  const got = await cofferWithBytes(['files', '-r', repo, 'fileserver:latest', 'get', folder, '--to', target], { env });
  assertExit(got, 0);
  assert.match(got.stdout.toString('utf8'), /restored to .*extrait\\xe9: 1 files/);
  assert.equal(await fs.readFile(under(target, 'caf\xe9', 'r\xe9sum\xe9.txt'), 'utf8'), 'kept\n');
});
