/**
 * A guest's disk is untrusted: a crafted ext4 (names with `/` and `..`, an escaping symlink,
 * a directory loop, an inode and an extent out of range), backed up and extracted through
 * `coffer files`, writes nothing outside `--to DIR`, reports each bad entry, and restores
 * the rest.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, open, readdir, readFile, readlink, stat, truncate, writeFile } from 'node:fs/promises';
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
  assert.deepEqual(report.renamed, [{ path: '/slash/name', as: 'slash%2Fname', reason: 'unsafe' }]);
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

/** A repository holding one backup of the ext4 of {@link BYTE_NAMES} (made once, for the tests below). */
let bytesRepo: Promise<string> | undefined;
function byteNamesRepo(): Promise<string> {
  bytesRepo ??= (async () => {
    const path = join(work, 'bytes-repo');
    assertExit(await coffer(['init', '-r', path], { env }), 0);
    assertExit(await coffer(['backup', '-r', path, '--vm', 'latin1', await buildByteNamesExtImage()], { env }), 0);
    return path;
  })();
  return bytesRepo;
}

/** `path/name/…` as bytes, for names that are not UTF-8. */
const bytesAt = (root: string, ...names: Buffer[]): Buffer => Buffer.concat([Buffer.from(root), ...names.flatMap((n) => [Buffer.from('/'), n])]);

/** What a restore of {@link BYTE_NAMES} must hold, by GNU tar or by get --to: each name's exact bytes (the control character escaped). */
async function assertByteNamesRestored(to: string, what: string): Promise<void> {
  const hex = (names: Buffer[]): string[] => names.map((n) => n.toString('hex')).sort();
  const top = [BYTE_NAMES.latin1Acute, BYTE_NAMES.latin1Grave, BYTE_NAMES.utf8, BYTE_NAMES.ffFe, BYTE_NAMES.folder, BYTE_NAMES.link, BYTE_NAMES.backslashText, BYTE_NAMES.longest, Buffer.from('esc%1B\xe9', 'latin1'), Buffer.from('lost+found')];
  assert.deepEqual(hex(await readdir(Buffer.from(to), { encoding: 'buffer' })), hex(top), `${what}: every name as its bytes`);
  assert.deepEqual(hex(await readdir(bytesAt(to, BYTE_NAMES.folder), { encoding: 'buffer' })), hex([BYTE_NAMES.inFolder, BYTE_NAMES.hardLink]));
  assert.equal(await readFile(bytesAt(to, BYTE_NAMES.latin1Acute), 'utf8'), 'latin1 e-acute\n', `${what}: the byte E9`);
  assert.equal(await readFile(bytesAt(to, BYTE_NAMES.backslashText), 'utf8'), 'backslash text\n', `${what}: the text \\xe9 beside it`);
  assert.equal(await readFile(bytesAt(to, BYTE_NAMES.latin1Grave), 'utf8'), 'latin1 e-grave\n');
  assert.equal(await readFile(bytesAt(to, BYTE_NAMES.longest), 'utf8'), '255 bytes\n');
  assert.equal(await readFile(bytesAt(to, BYTE_NAMES.folder, BYTE_NAMES.inFolder), 'utf8'), 'inside\n');
  assert.equal((await stat(bytesAt(to, BYTE_NAMES.folder, BYTE_NAMES.hardLink))).ino, (await stat(bytesAt(to, BYTE_NAMES.latin1Grave))).ino, `${what}: the second name is a hard link`);
  assert.deepEqual(await readlink(bytesAt(to, BYTE_NAMES.link), { encoding: 'buffer' }), BYTE_NAMES.latin1Acute, `${what}: the link points at the byte name, not its text twin`);
}

test('names that are not UTF-8 come back as the same bytes with get --to, and renames print them as \\xNN', async () => {
  const repository = await byteNamesRepo();
  const to = join(work, 'bytes-out');
  const got = await coffer(['files', '-r', repository, 'latin1:latest', 'get', 'disk:/', '--to', to, '--json'], { env });
  assertExit(got, 0);
  const report = JSON.parse(got.stdout.toString('utf8')) as { files: number; hardLinks: number; problems: unknown[]; renamed: unknown[] };
  assert.deepEqual([report.files, report.hardLinks, report.problems], [8, 1, []]);
  // Only the control character is escaped; the byte after it stays, and JSON gives both names' bytes.
  assert.deepEqual(report.renamed, [{ path: '/esc\u001b\udce9', as: 'esc%1B\udce9', reason: 'unsafe', pathBytes: '2f6573631be9', asBytes: '657363253142e9' }]);
  await assertByteNamesRestored(to, 'get --to');

  const again = await coffer(['files', '-r', repository, 'latin1:latest', 'get', 'disk:/', '--to', join(work, 'bytes-out-2')], { env });
  assertExit(again, 0);
  assert.match(again.stderr, /^coffer: \/esc\\x1b\\xe9 has an unsafe name: written as esc%1B\\xe9$/m);
});

test('ls and find print a byte that is not UTF-8 as \\xNN and a backslash as \\\\, and what they print finds the entry', async () => {
  const repository = await byteNamesRepo();
  const files = (...args: string[]) => coffer(['files', '-r', repository, 'latin1:latest', ...args], { env });
  const listed = await files('ls', 'disk:/');
  assertExit(listed, 0);
  const names = listed.stdout.toString('utf8').split('\n').filter(Boolean).sort();
  assert.deepEqual(names, ['caf\\xe8', 'caf\\xe9', 'caf\\\\xe9', 'café', 'd\\xe9j\\xe0/', 'esc\\x1b\\xe9', 'lien', 'lost+found/', '\\xff\\xfe', '\\xe9'.repeat(255)].sort());
  const cat = async (path: string): Promise<string> => {
    const result = await files('cat', `disk:${path}`);
    assertExit(result, 0);
    return result.stdout.toString('utf8');
  };
  assert.equal(await cat('/caf\\xe9'), 'latin1 e-acute\n', '\\xe9 is the byte, though a name holds that text');
  assert.equal(await cat('/caf\\\\xe9'), 'backslash text\n');
  assert.equal(await cat('/d\\xe9j\\xe0/x\\xb5'), 'inside\n');
  assert.equal(await cat(`/${'\\xe9'.repeat(255)}`), '255 bytes\n');
  const one = await files('ls', 'disk:/caf\\xe9');
  assert.equal(one.stdout.toString('utf8'), 'caf\\xe9\n', 'a file is listed by its own name, not as typed');

  // --json: the name as JSON text, and its bytes in hex where it has bytes that are not UTF-8.
  const json = await files('ls', 'disk:/', '--json');
  const rows = JSON.parse(json.stdout.toString('utf8')) as { name: string; nameBytes?: string; target?: string; targetBytes?: string }[];
  const row = (bytes: Buffer) => rows.find((r) => Buffer.from(r.nameBytes ?? Buffer.from(r.name).toString('hex'), 'hex').equals(bytes));
  assert.equal(row(BYTE_NAMES.latin1Acute)?.nameBytes, '636166e9');
  assert.equal(row(BYTE_NAMES.backslashText)?.nameBytes, undefined, 'a UTF-8 name needs no hex');
  assert.deepEqual([row(BYTE_NAMES.link)?.target, row(BYTE_NAMES.link)?.targetBytes], ['caf\udce9', '636166e9']);

  // find: from a file finds the file; from a folder, the folder too, as find(1) does.
  const find = async (...args: string[]): Promise<string[]> => {
    const result = await files('find', ...args);
    assertExit(result, 0);
    return result.stdout.toString('utf8').split('\n').filter(Boolean).sort();
  };
  assert.deepEqual(await find('disk:/caf\\xe9', '--name', 'caf*'), ['/caf\\xe9']);
  assert.deepEqual(await find('disk:/d\\xe9j\\xe0', '--name', '*'), ['/d\\xe9j\\xe0', '/d\\xe9j\\xe0/dur\\xe9', '/d\\xe9j\\xe0/x\\xb5']);
  // A pattern spells bytes as listings print them: *\xe9 is a name ending in the byte E9, not in the text.
  assert.deepEqual(await find('disk:/', '--name', '*\\xe9'), ['/caf\\xe9', '/d\\xe9j\\xe0/dur\\xe9', '/esc\\x1b\\xe9', `/${'\\xe9'.repeat(255)}`].sort());
  assert.deepEqual(await find('disk:/', '--name', 'caf\\\\xe9'), ['/caf\\\\xe9']);
  const found = JSON.parse((await files('find', 'disk:/', '--name', 'caf?', '--json')).stdout.toString('utf8')) as { name: string; nameBytes?: string }[];
  assert.deepEqual(found.map((f) => f.nameBytes ?? Buffer.from(f.name).toString('hex')).sort(), ['2f636166e8', '2f636166e9', '2f636166c3a9'].sort());
});

test('a tar of names that are not UTF-8 holds their bytes: GNU tar extracts each one, beside its \\xNN text twin, with nothing renamed', async () => {
  const repository = await byteNamesRepo();
  const tar = await coffer(['files', '-r', repository, 'latin1:latest', 'get', 'disk:/', '--tar'], { env });
  assertExit(tar, 0);
  const notes = tar.stderr.split('\n').filter((line) => line.startsWith('coffer: '));
  assert.deepEqual(notes, ['coffer: /esc\\x1b\\xe9 has an unsafe name: written as esc%1B\\xe9'], 'only the control character is escaped: no note for the bytes');
  const listing = execFileSync('tar', ['--quoting-style=escape', '-tf', '-'], { input: tar.stdout, env: { ...process.env, LC_ALL: 'C' } }).toString('utf8').split('\n');
  assert.ok(listing.includes('caf\\351') && listing.includes('caf\\\\xe9') && listing.includes('\\351'.repeat(255)), listing.join(', '));
  const to = join(work, 'bytes-tar');
  await mkdir(to);
  execFileSync('tar', ['-xf', '-', '-C', to], { input: tar.stdout });
  await assertByteNamesRestored(to, 'tar -x');
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
