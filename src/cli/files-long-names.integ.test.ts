/**
 * NTFS (and FAT) count a name's 255 characters in UTF-16: 125 CJK characters are 375 bytes of
 * UTF-8, more than Linux takes in one name (255). A real NTFS made by mkntfs, files named by
 * ntfscp, backed up and extracted through `coffer files get`: each long name is shortened
 * (its start, `~` and 8 hex digits of its hash, its extension), reported as renamed, never
 * dropped or called damage; `ls` and `cat` still use the full name.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { requireTools } from '../testing/index.js';
import { assertExit, coffer, makeWorkDir, removeDir, runTool } from './cli-harness.js';

const exec = promisify(execFile);

const env = { COFFER_PASSWORD: 'long names' };
const STEM = '日'.repeat(120);
/** Two names that differ only past Linux's 255 bytes, and one that fits. */
const NAMES = { one: `${STEM}一.txt`, two: `${STEM}二.txt`, fits: '短い名前.txt' };
let work: string;
let repo: string;

before(async () => {
  await requireTools('mkntfs', 'ntfscp');
  work = await makeWorkDir('files-long');
  repo = join(work, 'repo');
  const image = join(work, 'ntfs.img');
  await writeFile(image, '');
  await truncate(image, 20 * 1024 * 1024);
  const made = await runTool('mkntfs', ['-q', '-F', '-f', image]);
  assert.equal(made.code, 0, made.stderr);
  for (const [key, name] of Object.entries(NAMES)) {
    const content = join(work, `${key}.txt`);
    await writeFile(content, `${key}\n`);
    // ntfscp takes the name in the locale's charset: UTF-8 here.
    await exec('ntfscp', [image, content, name], { env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin`, LC_ALL: 'C.UTF-8' } });
  }
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'long', image], { env }), 0);
});
after(() => removeDir(work));

test('names longer than Linux takes are extracted under shortened names, reported as renamed, exit 0', async () => {
  const to = join(work, 'out');
  const result = await coffer(['files', '-r', repo, 'long:latest', 'get', 'disk:/', '--to', to, '--json'], { env });
  assertExit(result, 0);
  const report = JSON.parse(result.stdout.toString('utf8')) as { files: number; problems: unknown[]; renamed: { path: string; as: string; reason: string }[] };
  assert.deepEqual(report.problems, []);
  assert.equal(report.files, 3);
  const renamed = new Map(report.renamed.map((r) => [r.path, r]));
  assert.equal(renamed.size, 2, 'only the two long names');
  const names = await readdir(to);
  for (const key of ['one', 'two'] as const) {
    const entry = renamed.get(`/${NAMES[key]}`);
    assert.ok(entry !== undefined, `${key} reported`);
    assert.equal(entry.reason, 'long');
    assert.match(entry.as, /^日+~[0-9a-f]{8}\.txt$/, 'its start, a hash and the extension');
    assert.ok(Buffer.byteLength(entry.as) <= 255 && Buffer.byteLength(entry.as) > 240, `${Buffer.byteLength(entry.as)} bytes: as long as fits`);
    assert.ok(names.includes(entry.as));
    assert.equal(await readFile(join(to, entry.as), 'utf8'), `${key}\n`);
  }
  assert.notEqual(renamed.get(`/${NAMES.one}`)?.as, renamed.get(`/${NAMES.two}`)?.as, 'two names stay two');
  assert.equal(await readFile(join(to, NAMES.fits), 'utf8'), 'fits\n');

  const text = await coffer(['files', '-r', repo, 'long:latest', 'get', 'disk:/', '--to', join(work, 'out-text')], { env });
  assertExit(text, 0);
  assert.match(text.stderr, /has a name longer than Linux takes \(255 bytes\): written as 日+~[0-9a-f]{8}\.txt/);
});

test('ls shows the full names and cat reads a file by its full name', async () => {
  const listing = await coffer(['files', '-r', repo, 'long:latest', 'ls', 'disk:/'], { env });
  assertExit(listing, 0);
  for (const name of Object.values(NAMES)) assert.ok(listing.stdout.toString('utf8').split('\n').includes(name), `${name.slice(-6)} listed`);
  const cat = await coffer(['files', '-r', repo, 'long:latest', 'cat', `disk:/${NAMES.two}`], { env });
  assertExit(cat, 0);
  assert.equal(cat.stdout.toString('utf8'), 'two\n');
});
