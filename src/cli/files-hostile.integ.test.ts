/**
 * A guest's disk is untrusted: a crafted ext4 (names with `/` and `..`, an escaping symlink,
 * a directory loop, an inode and an extent out of range), backed up and extracted through
 * `coffer files`, writes nothing outside `--to DIR`, reports each bad entry, and restores
 * the rest.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, open, readdir, readFile, readlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildByteNamesExtImage, buildHostileExtImage, BYTE_NAMES, requireTools } from '../testing/index.js';
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

test('cat of a file whose block map is damaged names the file, with the reader\'s reason', async () => {
  const result = await coffer(['files', '-r', repo, 'hostile:latest', 'cat', 'disk:/bad-extent.bin'], { env });
  assertExit(result, 14);
  assert.match(result.stderr, /^coffer: \/bad-extent\.bin: .*inode \d+/m);
});

test('names that are not UTF-8 come back as the same bytes, list as \\xNN and are found by it', async () => {
  const bytesRepo = join(work, 'bytes-repo');
  assertExit(await coffer(['init', '-r', bytesRepo], { env }), 0);
  assertExit(await coffer(['backup', '-r', bytesRepo, '--vm', 'latin1', await buildByteNamesExtImage()], { env }), 0);
  const to = join(work, 'bytes-out');
  const got = await coffer(['files', '-r', bytesRepo, 'latin1:latest', 'get', 'disk:/', '--to', to, '--json'], { env });
  assertExit(got, 0);
  const report = JSON.parse(got.stdout.toString('utf8')) as { files: number; problems: unknown[]; renamed: unknown[] };
  assert.deepEqual([report.files, report.problems, report.renamed], [5, [], []], 'every file restored under its own name');
  const at = (...names: Buffer[]): Buffer => Buffer.concat([Buffer.from(to), ...names.flatMap((n) => [Buffer.from('/'), n])]);
  const hostNames = (await readdir(Buffer.from(to), { encoding: 'buffer' })).map((n) => n.toString('hex')).sort();
  assert.deepEqual(hostNames, [BYTE_NAMES.latin1Acute, BYTE_NAMES.latin1Grave, BYTE_NAMES.utf8, BYTE_NAMES.ffFe, BYTE_NAMES.folder, BYTE_NAMES.link, Buffer.from('lost+found')].map((b) => b.toString('hex')).sort());
  assert.equal(await readFile(at(BYTE_NAMES.latin1Acute), 'utf8'), 'latin1 e-acute\n');
  assert.equal(await readFile(at(BYTE_NAMES.latin1Grave), 'utf8'), 'latin1 e-grave\n');
  assert.equal(await readFile(at(BYTE_NAMES.folder, BYTE_NAMES.inFolder), 'utf8'), 'inside\n');
  assert.deepEqual(await readlink(at(BYTE_NAMES.link), { encoding: 'buffer' }), BYTE_NAMES.latin1Acute);

  const listed = await coffer(['files', '-r', bytesRepo, 'latin1:latest', 'ls', 'disk:/'], { env });
  assertExit(listed, 0);
  const names = listed.stdout.toString('utf8').split('\n').filter(Boolean).sort();
  assert.deepEqual(names, ['caf\\xe8', 'caf\\xe9', 'café', 'd\\xe9j\\xe0/', 'lien', 'lost+found/', '\\xff\\xfe'].sort());
  const cat = await coffer(['files', '-r', bytesRepo, 'latin1:latest', 'cat', 'disk:/d\\xe9j\\xe0/x\\xb5'], { env });
  assertExit(cat, 0);
  assert.equal(cat.stdout.toString('utf8'), 'inside\n');
  // find from a file finds the file; from a folder, the folder too, as find(1) does.
  const fromFile = await coffer(['files', '-r', bytesRepo, 'latin1:latest', 'find', 'disk:/caf\\xe9', '--name', 'caf*'], { env });
  assertExit(fromFile, 0);
  assert.equal(fromFile.stdout.toString('utf8'), '/caf\\xe9\n');
  const fromFolder = await coffer(['files', '-r', bytesRepo, 'latin1:latest', 'find', 'disk:/d\\xe9j\\xe0', '--name', '*'], { env });
  assert.equal(fromFolder.stdout.toString('utf8'), '/d\\xe9j\\xe0\n/d\\xe9j\\xe0/x\\xb5\n');

  // A tar name is UTF-8 text: such bytes are archived as \xNN, and said so.
  const tar = await coffer(['files', '-r', bytesRepo, 'latin1:latest', 'get', 'disk:/', '--tar'], { env });
  assertExit(tar, 0);
  const listing = execFileSync('tar', ['--quoting-style=literal', '-tf', '-'], { input: tar.stdout }).toString('utf8').split('\n').filter(Boolean).sort();
  assert.ok(listing.includes('caf\\xe9') && listing.includes('caf\\xe8') && listing.includes('d\\xe9j\\xe0/x\\xb5'), listing.join(', '));
  assert.match(tar.stderr, /caf\\xe9 has an unsafe name: written as caf\\xe9/);
});

test('an ext4 whose primary superblock was overwritten is browsed through its backup superblock, with a warning', async () => {
  const src = join(work, 'wiped-src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc/hostname'), 'web01\n');
  const image = join(work, 'wiped.img');
  await writeFile(image, '');
  await truncate(image, 16 * 1024 * 1024);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', '-d', src, image]);
  const handle = await open(image, 'r+');
  await handle.write(Buffer.alloc(1024), 0, 1024, 1024); // the primary superblock, gone
  await handle.close();
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'wiped', image], { env }), 0);
  const cat = await coffer(['files', '-r', repo, 'wiped:latest', 'cat', 'disk:/etc/hostname'], { env });
  assertExit(cat, 0);
  assert.equal(cat.stdout.toString('utf8'), 'web01\n');
  assert.match(cat.stderr, /^coffer: warning: volume disk: the primary superblock is damaged .*backup superblock at block 8193/m);
});

test('an ext4 whose primary group descriptors were zeroed is browsed through their backup in group 1, with a warning', async () => {
  const src = join(work, 'gdt-src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc/hostname'), 'web02\n');
  await writeFile(join(src, 'etc/motd'), 'welcome\n');
  const image = join(work, 'gdt.img');
  await writeFile(image, '');
  await truncate(image, 16 * 1024 * 1024);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', '-d', src, image]);
  const handle = await open(image, 'r+');
  await handle.write(Buffer.alloc(1024), 0, 1024, 2 * 1024); // block 2: the primary descriptor table, gone
  await handle.close();
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'gdt', image], { env }), 0);
  const warning = /^coffer: warning: volume disk: the primary group descriptors are damaged \(group 0: all zeros\); groups 0-1 read through the backup copy in group 1/m;
  const ls = await coffer(['files', '-r', repo, 'gdt:latest', 'ls', 'disk:/etc'], { env });
  assertExit(ls, 0);
  assert.deepEqual(ls.stdout.toString('utf8').split('\n').filter(Boolean).sort(), ['hostname', 'motd']);
  assert.match(ls.stderr, warning);
  const cat = await coffer(['files', '-r', repo, 'gdt:latest', 'cat', 'disk:/etc/hostname'], { env });
  assertExit(cat, 0);
  assert.equal(cat.stdout.toString('utf8'), 'web02\n');
  assert.match(cat.stderr, warning);
});
