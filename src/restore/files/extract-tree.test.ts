import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { resolvePath, type FsXattr } from '../../fs/index.js';
import { extractTree } from './extract-tree.js';
import { dir, file, MemoryFs, symlink, type MemoryEntry } from './memory-fs.test-support.js';
import { tarTree } from './tar-tree.js';

const run = promisify(execFile);

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'coffer-extract-'));
  t.after(() => fsp.rm(d, { recursive: true, force: true }));
  return d;
}

/** Every path below `root` (lstat, never following links), sorted. */
async function listAll(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(root, { withFileTypes: true })) {
    out.push(e.name);
    if (e.isDirectory()) for (const sub of await listAll(path.join(root, e.name))) out.push(`${e.name}/${sub}`);
  }
  return out.sort();
}

function hostile(): MemoryFs {
  const shared = file('shared content\n', { nlink: 2 });
  const loop = dir({});
  (loop.children as MemoryEntry[]).push({ name: 'again', node: loop });
  return new MemoryFs(
    dir({
      'ok.txt': file('fine\n', { mode: 0o640, mtimeMs: 1_500_000_000_000 }),
      'setuid-tool': file('#!/bin/sh\n', { mode: 0o4755 }),
      'a/b': file('slash in a name\n'),
      'nul\0name': file('nul\n'),
      'tab\there': file('control\n'),
      '..': dir({ 'escaped.txt': file('must not land outside\n') }),
      '.': file('dot\n'),
      '': file('empty name\n'),
      'escape-link': symlink('../../../../etc/passwd'),
      'abs-link': symlink('/etc/shadow'),
      'first-name': shared,
      'loop': loop,
      'broken': file('0123456789', { failAt: 5 }),
      'dup': file('first\n'),
      sub: dir([
        { name: 'damaged', error: 'inode 77: bad extent header' },
        { name: 'second-name', node: shared },
      ]),
    }),
  );
}

test('extraction of a hostile tree writes nothing outside the folder and reports each bad entry', async (t) => {
  const work = await tempDir(t);
  const to = path.join(work, 'out');
  const fs = hostile();
  // A second entry called "dup" (as a hostile directory may hold).
  ((await fs.root()) as unknown as { children: MemoryEntry[] }).children.push({ name: 'dup', node: file('second\n') });
  const report = await extractTree(fs, [await resolvePath(fs, '/')], { to });
  assert.deepEqual(await fsp.readdir(work), ['out'], 'nothing next to the folder');
  assert.deepEqual(await listAll(to), [
    'a%2Fb', 'abs-link', 'dup', 'escape-link', 'first-name', 'loop', 'nul%00name', 'ok.txt', 'setuid-tool', 'sub', 'sub/second-name', 'tab%09here',
  ]);
  assert.equal(await fsp.readFile(path.join(to, 'ok.txt'), 'utf8'), 'fine\n');
  assert.equal(await fsp.readFile(path.join(to, 'dup'), 'utf8'), 'first\n');
  const ok = await fsp.stat(path.join(to, 'ok.txt'));
  assert.equal(ok.mode & 0o7777, 0o640);
  assert.equal(ok.mtimeMs, 1_500_000_000_000);
  assert.equal((await fsp.stat(path.join(to, 'setuid-tool'))).mode & 0o7777, 0o4755);
  assert.equal(await fsp.readlink(path.join(to, 'escape-link')), '../../../../etc/passwd', 'links are kept as links');
  const a = await fsp.stat(path.join(to, 'first-name'));
  const b = await fsp.stat(path.join(to, 'sub/second-name'));
  assert.equal(a.ino, b.ino, 'a second name is a hard link');
  assert.equal(report.hardLinks, 1);
  const messages = report.problems.map((p) => p.message).join('\n');
  for (const expected of ['"..", ', '"."', 'empty name', 'directory loop', 'block map damaged', 'bad extent header', 'a second entry named "dup"']) {
    assert.ok(messages.includes(expected.replace(', ', '')), `a problem mentions ${expected}:\n${messages}`);
  }
  assert.ok(!(await fsp.readdir(to)).includes('broken'), 'a file that failed part-way is removed');
  assert.deepEqual(report.renamed.map((r) => r.as).sort(), ['a%2Fb', 'nul%00name', 'tab%09here']);
});

test('a name that escaping makes another entry\'s is restored under a ~1 suffix and reported, not skipped', async (t) => {
  const to = await tempDir(t);
  const fs = new MemoryFs(dir({ 'a/b': file('slash\n'), 'a%2Fb': file('percent text\n'), 'tab\there': file('tab\n'), 'tab%09here': file('text\n') }));
  const report = await extractTree(fs, [await resolvePath(fs, '/')], { to });
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.renamed, [
    { path: '/a/b', as: 'a%2Fb', reason: 'unsafe' },
    { path: '/a%2Fb', as: 'a%2Fb~1', reason: 'taken' },
    { path: '/tab\there', as: 'tab%09here', reason: 'unsafe' },
    { path: '/tab%09here', as: 'tab%09here~1', reason: 'taken' },
  ]);
  const contents = await Promise.all(['a%2Fb', 'a%2Fb~1', 'tab%09here', 'tab%09here~1'].map((n) => fsp.readFile(path.join(to, n), 'utf8')));
  assert.deepEqual(contents, ['slash\n', 'percent text\n', 'tab\n', 'text\n']);
});

test('extraction never follows a link that already exists in the folder', async (t) => {
  const work = await tempDir(t);
  const to = path.join(work, 'out');
  const outside = path.join(work, 'outside');
  await fsp.mkdir(outside);
  await fsp.mkdir(to);
  await fsp.symlink(outside, path.join(to, 'docs'));
  await fsp.symlink(path.join(outside, 'victim'), path.join(to, 'victim'));
  const fs = new MemoryFs(dir({ docs: dir({ 'x.txt': file('x\n') }), victim: file('overwrite?\n') }));
  const report = await extractTree(fs, [await resolvePath(fs, '/')], { to });
  assert.deepEqual(await fsp.readdir(outside), [], 'nothing written through the links');
  assert.equal(report.problems.length, 2, JSON.stringify(report.problems));
  const again = await extractTree(fs, [await resolvePath(fs, '/')], { to, overwrite: true });
  assert.deepEqual(await fsp.readdir(outside), [], '--overwrite replaces the links themselves');
  assert.equal(await fsp.readFile(path.join(to, 'victim'), 'utf8'), 'overwrite?\n');
  assert.equal(await fsp.readFile(path.join(to, 'docs/x.txt'), 'utf8'), 'x\n');
  assert.equal(again.problems.length, 0, JSON.stringify(again.problems));
});

test('--overwrite never replaces a folder in the way of a file, and says so', async (t) => {
  const to = await tempDir(t);
  await fsp.mkdir(path.join(to, 'notes.txt'));
  const fs = new MemoryFs(dir({ 'notes.txt': file('n\n') }));
  const report = await extractTree(fs, [await resolvePath(fs, '/')], { to, overwrite: true });
  assert.deepEqual(report.problems.map((p) => p.message), [`cannot write ${path.join(to, 'notes.txt')}: a folder of that name is in the way (--overwrite replaces files and links, never a folder)`]);
  assert.ok((await fsp.stat(path.join(to, 'notes.txt'))).isDirectory());
});

test('a single path lands under its own name, and a file keeps its holes', async (t) => {
  const to = await tempDir(t);
  const content = new Uint8Array(3 << 20);
  content.fill(7, 2 << 20, (2 << 20) + 10);
  const fs = new MemoryFs(dir({ var: dir({ 'disk.img': file(content) }) }));
  const report = await extractTree(fs, [await resolvePath(fs, '/var/disk.img')], { to });
  const st = await fsp.stat(path.join(to, 'disk.img'));
  assert.equal(st.size, 3 << 20);
  assert.ok(st.blocks * 512 <= (1 << 20) + 65536, `only the data piece is allocated (${st.blocks * 512} bytes)`);
  assert.deepEqual(await fsp.readFile(path.join(to, 'disk.img')), Buffer.from(content));
  assert.equal(report.bytes, 1 << 20);
});

test('a tar stream holds the safe tree, readable by GNU tar', async (t) => {
  const work = await tempDir(t);
  const fs = hostile();
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const report = await tarTree(fs, [await resolvePath(fs, '/')], out);
  const archive = path.join(work, 'a.tar');
  await fsp.writeFile(archive, Buffer.concat(chunks));
  const { stdout } = await run('tar', ['-tvf', archive]);
  const names = stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(5).join(' ').replace(/ -> .*| link to .*/, ''));
  assert.deepEqual(names.sort(), [
    'a%2Fb', 'abs-link', 'broken', 'dup', 'escape-link', 'first-name', 'loop/', 'nul%00name', 'ok.txt', 'setuid-tool', 'sub/', 'sub/second-name', 'tab%09here',
  ]);
  assert.match(stdout, /-rwsr-xr-x 1000\/1000 .* setuid-tool/);
  assert.match(stdout, /hrw-r--r-- .* sub\/second-name link to first-name/);
  await fsp.mkdir(path.join(work, 'x'));
  await run('tar', ['-xf', archive, '-C', path.join(work, 'x')]);
  assert.equal(await fsp.readFile(path.join(work, 'x/ok.txt'), 'utf8'), 'fine\n');
  assert.deepEqual(await fsp.readFile(path.join(work, 'x/broken')), Buffer.alloc(10), 'zeros from the failed piece on');
  assert.ok(report.problems.some((p) => p.path === '/broken' && p.message.includes('zeros from there')));
});

test('a tar stream keeps long and non-ASCII names (PAX headers)', async (t) => {
  const work = await tempDir(t);
  const long = `${'very-long-directory-name-'.repeat(8)}end`;
  const fs = new MemoryFs(dir({ [long]: dir({ 'café ☕ 日本.txt': file('unicode\n') }) }));
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await tarTree(fs, [await resolvePath(fs, '/')], out);
  await fsp.writeFile(path.join(work, 'a.tar'), Buffer.concat(chunks));
  await run('tar', ['-xf', path.join(work, 'a.tar'), '-C', work]);
  assert.equal(await fsp.readFile(path.join(work, long, 'café ☕ 日本.txt'), 'utf8'), 'unicode\n');
});

/** Times and owners a ustar header cannot hold (tar-stream's: ids up to 262,143, seconds from 0 to 2^31 - 1). */
const OUT_OF_USTAR = {
  'before-1970': { mtimeMs: Date.UTC(1960, 5, 15, 12) },
  'just-before-1970': { mtimeMs: -1000 },
  'after-2038': { mtimeMs: Date.UTC(2040, 0, 1) },
  'in-2200': { mtimeMs: Date.UTC(2200, 0, 1), uid: 3_000_000, gid: 4_000_000_000 },
  'fraction': { mtimeMs: Date.UTC(2200, 0, 1) + 250 },
} as const;

test('files keep times before 1970 and after 2038, extracted (not "now")', async (t) => {
  const to = await tempDir(t);
  const fs = new MemoryFs(dir(Object.fromEntries(Object.entries(OUT_OF_USTAR).map(([name, extra]) => [name, file(`${name}\n`, { mtimeMs: extra.mtimeMs, atimeMs: extra.mtimeMs })]))));
  await extractTree(fs, [await resolvePath(fs, '/')], { to });
  for (const [name, { mtimeMs }] of Object.entries(OUT_OF_USTAR)) {
    const st = await fsp.lstat(path.join(to, name));
    assert.equal(st.mtimeMs, mtimeMs, `mtime of ${name}`);
    assert.equal(st.atimeMs, mtimeMs, `atime of ${name}`);
  }
});

test('a tar stream keeps times and owners past the ustar fields in PAX records, as GNU tar reads them', async (t) => {
  const work = await tempDir(t);
  const fs = new MemoryFs(dir(Object.fromEntries(Object.entries(OUT_OF_USTAR).map(([name, extra]) => [name, file(`${name}\n`, extra)]))));
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await tarTree(fs, [await resolvePath(fs, '/')], out);
  const archive = path.join(work, 'a.tar');
  await fsp.writeFile(archive, Buffer.concat(chunks));
  // GNU tar exits 2 on a malformed header (as "000000000-1" was); --full-time prints the seconds.
  const { stdout } = await run('tar', ['--numeric-owner', '--full-time', '-tvf', archive], { env: { ...process.env, TZ: 'UTC' } });
  const line = (name: string) => stdout.split('\n').find((l) => l.endsWith(` ${name}`)) ?? assert.fail(`${name} not listed:\n${stdout}`);
  assert.match(line('before-1970'), / 1960-06-15 12:00:00 before-1970$/);
  assert.match(line('just-before-1970'), / 1969-12-31 23:59:59 just-before-1970$/);
  assert.match(line('after-2038'), / 2040-01-01 00:00:00 after-2038$/);
  assert.match(line('in-2200'), / 3000000\/4000000000 .* 2200-01-01 00:00:00 in-2200$/);
  assert.match(line('fraction'), / 2200-01-01 00:00:00(\.25)? fraction$/);
  // Extracted by GNU tar, as root keeping owners: the exact times and ids.
  await fsp.mkdir(path.join(work, 'x'));
  await run('tar', ['--numeric-owner', '-xf', archive, '-C', path.join(work, 'x')]);
  for (const [name, extra] of Object.entries(OUT_OF_USTAR)) {
    const st = await fsp.lstat(path.join(work, 'x', name));
    assert.equal(st.mtimeMs, extra.mtimeMs, `mtime of ${name} as GNU tar restored it`);
    if ('uid' in extra && process.getuid?.() === 0) assert.deepEqual([st.uid, st.gid], [extra.uid, extra.gid]);
  }
});

test('a file with NTFS alternate data streams is extracted and archived with a note that they were left out', async (t) => {
  const to = await tempDir(t);
  const fs = new MemoryFs(dir({ 'ads.txt': file('main\n', { streams: [{ name: 's1', size: 7 }, { name: 'Zone.Identifier', size: 26 }] }), 'plain.txt': file('plain\n') }));
  const extracted = await extractTree(fs, [await resolvePath(fs, '/')], { to });
  assert.equal(await fsp.readFile(path.join(to, 'ads.txt'), 'utf8'), 'main\n');
  assert.deepEqual(extracted.skipped, [{ path: '/ads.txt', reason: 'its 2 alternate data streams "s1" (7 bytes), "Zone.Identifier" (26 bytes) not restored (only the file\'s main content)' }]);
  const archived = await tarTree(fs, [await resolvePath(fs, '/')], new PassThrough().resume());
  assert.deepEqual(archived.skipped.map((s) => s.path), ['/ads.txt']);
  assert.match(archived.skipped[0]!.reason, /not archived/);
});

test('streams carried as user.* attributes are restored and archived; an archive-only attribute goes in the tar only; a stream none carries is noted with why', async (t) => {
  const to = await tempDir(t);
  const zone = Buffer.from('[ZoneTransfer]\r\nZoneId=3\r\n');
  const dos = (flags: number): FsXattr => ({ name: 'system.ntfs_attrib_be', value: Buffer.from([0, 0, 0, flags]), archiveOnly: true });
  const big = { name: 'big', size: 70000, notXattr: 'larger than the 65536 bytes an extended attribute holds on Linux' };
  const fs = new MemoryFs(dir({
    'download.exe': file('MZ\n', { streams: [{ name: 'Zone.Identifier', size: zone.length, xattr: 'user.Zone.Identifier' }, big], xattrList: [{ name: 'user.Zone.Identifier', value: zone }, dos(0x21)] }),
    folder: dir({}, { streams: [big], xattrList: [dos(0x30)] }),
    'all.txt': file('all\n', { streams: [{ name: 'a', size: 1, xattr: 'user.a' }], xattrList: [{ name: 'user.a', value: Buffer.from('a') }, dos(0x20)] }),
  }));
  const extracted = await extractTree(fs, [await resolvePath(fs, '/')], { to });
  assert.deepEqual(extracted.problems, []);
  const bigLine = 'its alternate data stream "big" (70000 bytes: larger than the 65536 bytes an extended attribute holds on Linux) not restored';
  assert.deepEqual(extracted.skipped.sort((a, b) => a.path.localeCompare(b.path)), [{ path: '/download.exe', reason: bigLine }, { path: '/folder', reason: bigLine }]);
  const xattrsOf = async (p: string): Promise<string> => (await run('getfattr', ['-d', '-m', '-', '-e', 'hex', '--absolute-names', p])).stdout.split('\n').filter((l) => l.includes('=')).join(' ');
  assert.equal(await xattrsOf(path.join(to, 'download.exe')), `user.Zone.Identifier=0x${zone.toString('hex')}`, 'the stream, not the DOS attributes');
  assert.equal(await xattrsOf(path.join(to, 'all.txt')), 'user.a=0x61');
  assert.equal(await xattrsOf(path.join(to, 'folder')), '');

  const chunks: Buffer[] = [];
  const out = new PassThrough().on('data', (c: Buffer) => chunks.push(c));
  const archived = await tarTree(fs, [await resolvePath(fs, '/')], out);
  assert.deepEqual(archived.skipped.map((s) => [s.path, s.reason.replace('not archived', 'not restored')]).sort(), [['/download.exe', bigLine], ['/folder', bigLine]]);
  const tar = Buffer.concat(chunks);
  for (const record of [Buffer.concat([Buffer.from('SCHILY.xattr.user.Zone.Identifier='), zone, Buffer.from('\n')]), Buffer.from(' SCHILY.xattr.system.ntfs_attrib_be=\0\0\0!\n'), Buffer.from(' SCHILY.xattr.system.ntfs_attrib_be=\0\0\x000\n')]) {
    assert.ok(tar.includes(record), `the tar holds ${JSON.stringify(record.toString('latin1'))}`);
  }
  // GNU tar's default (--xattrs without --xattrs-include) sets user.* only: the DOS attributes cost nothing on Linux.
  const from = await tempDir(t);
  await fsp.writeFile(path.join(from, 'a.tar'), tar);
  await run('tar', ['--xattrs', '-xf', path.join(from, 'a.tar'), '-C', from]);
  assert.equal(await xattrsOf(path.join(from, 'download.exe')), `user.Zone.Identifier=0x${zone.toString('hex')}`);
});

test('paths resolve through links inside the filesystem, case-insensitively where it is', async () => {
  const fs = new MemoryFs(dir({ Docs: dir({ 'Read.txt': file('r') }), up: symlink('/Docs'), self: symlink('self') }), true);
  assert.equal((await resolvePath(fs, '/docs/read.TXT')).path, '/docs/read.TXT');
  assert.equal((await resolvePath(fs, '/up/../up/Read.txt')).node.size, 1);
  assert.equal((await resolvePath(fs, '/up')).node.type, 'symlink');
  assert.equal((await resolvePath(fs, '/up', { followLast: true })).node.type, 'directory');
  await assert.rejects(resolvePath(fs, '/self/x'), { code: 'E_PATH_NOT_FOUND', message: /symbolic links/ });
  await assert.rejects(resolvePath(fs, '/Docs/Read.txt/x'), { code: 'E_PATH_NOT_FOUND', message: /not a directory/ });
  await assert.rejects(resolvePath(fs, '/nope'), { code: 'E_PATH_NOT_FOUND' });
});
