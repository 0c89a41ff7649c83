/**
 * A guest's extended attributes and POSIX ACLs survive a file-level restore: an ext4 made by
 * mke2fs from a tree with `user.*`, `trusted.*`, `security.*` attributes, access and default
 * ACLs and an attribute block (testing/xattr-tree.ts) is backed up; `files get --to` and
 * `files get --tar` (extracted by GNU tar with --xattrs --acls) give back what getfattr and
 * getfacl read on the source tree. An attribute the host refuses (system.richacl) is a
 * warning line, not a failed restore. The same tree backed up as a file snapshot
 * (`backup --files`, read back through TreeFilesystem) gives them back the same way.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { decodeName } from '../names/index.js';
import { buildXattrsExtImage, requireTools, writeXattrTree } from '../testing/index.js';
import { assertExit, coffer, makeWorkDir, removeDir } from './cli-harness.js';

const run = promisify(execFile);
const env = { COFFER_PASSWORD: 'xattrs' };
const PATHS = ['colour.txt', 'shared', 'shared/inner.txt', 'shared/plain.txt', 'big-attrs.txt', 'plain.txt', 'link'];
let work: string;
let repo: string;
let source: string;
let fileSnapshot: string;

before(async () => {
  await requireTools('mke2fs', 'debugfs', 'setfattr', 'getfattr', 'setfacl', 'getfacl', 'tar');
  work = await makeWorkDir('files-xattrs');
  repo = join(work, 'repo');
  source = join(work, 'source');
  await mkdir(source);
  await writeXattrTree(source);
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'xattrs', await buildXattrsExtImage()], { env }), 0);
  // The folder named to `files get` carries one too (the ext image's root has none to compare).
  execFileSync('setfattr', ['-n', 'user.top', '-v', 'folder', source]);
  const files = await coffer(['backup', '-r', repo, '--files', source, '--host', 'xattrs-host', '--json'], { env });
  assertExit(files, 0);
  fileSnapshot = (JSON.parse(files.stdout.toString('utf8')) as { id: string }).id;
});
after(() => removeDir(work));

/** `getfattr -h -d -m - -e hex` of one path, as name → hex value (a name's bytes kept). */
async function getfattr(file: string): Promise<Map<string, string>> {
  const { stdout } = await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', file], { encoding: 'buffer' });
  const out = new Map<string, string>();
  for (const line of stdout.toString('latin1').split('\n')) {
    const match = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (match) out.set(decodeName(Buffer.from(match[1] as string, 'latin1')), match[2] as string);
  }
  return new Map([...out].sort());
}

/** `getfacl -n -P --omit-header` of one path (numeric ids, a link not followed). */
async function getfacl(file: string): Promise<string> {
  return (await run('getfacl', ['-n', '-P', '--omit-header', file])).stdout;
}

async function assertSameAsSource(restored: string, how: string): Promise<void> {
  for (const file of PATHS) {
    assert.deepEqual(await getfattr(join(restored, file)), await getfattr(join(source, file)), `${how}: ${file}: getfattr`);
    if (file !== 'link') assert.equal(await getfacl(join(restored, file)), await getfacl(join(source, file)), `${how}: ${file}: getfacl`);
  }
  assert.match(await getfacl(join(restored, 'shared')), /^default:user:1234:r-x$/m, `${how}: the default ACL`);
  assert.doesNotMatch(await getfacl(join(restored, 'shared/plain.txt')), /1234/, `${how}: a file without an ACL in a folder with a default one stays without`);
}

test('files get --to keeps extended attributes and ACLs; one the host refuses is a warning, exit 0', async () => {
  const to = join(work, 'restored');
  const result = await coffer(['files', '-r', repo, 'xattrs:latest', 'get', 'disk:/', '--to', to, '--json'], { env });
  assertExit(result, 0);
  const report = JSON.parse(result.stdout.toString('utf8')) as { problems: unknown[]; skipped: { path: string; reason: string }[] };
  assert.deepEqual(report.problems, []);
  assert.equal(report.skipped.length, 1, JSON.stringify(report.skipped));
  assert.equal(report.skipped[0]?.path, '/plain.txt');
  assert.match(report.skipped[0]?.reason ?? '', /^extended attribute system\.richacl not restored: .*Operation not supported \((EOPNOTSUPP|ENOTSUP)\)$/);
  await assertSameAsSource(to, 'get --to');
});

test('files get --tar holds them as GNU tar does: tar --xattrs --acls -x gives them back', async () => {
  const tar = await coffer(['files', '-r', repo, 'xattrs:latest', 'get', 'disk:/', '--tar'], { env });
  assertExit(tar, 0);
  const to = join(work, 'from-tar');
  await mkdir(to);
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--xattrs-exclude=system.richacl', '--acls', '-xf', '-', '-C', to], { input: tar.stdout });
  await assertSameAsSource(to, 'tar --xattrs --acls -x');
  const listing = execFileSync('tar', ['--xattrs', '--acls', '-tvvf', '-'], { input: tar.stdout }).toString('utf8');
  assert.match(listing, /\+ .*colour\.txt/, 'tar sees the ACL of colour.txt');
});

test('from a file snapshot: files get --to keeps extended attributes and ACLs, the folder named included', async () => {
  const to = join(work, 'restored-files');
  const result = await coffer(['files', '-r', repo, fileSnapshot, 'get', source, '--to', to, '--json'], { env });
  assertExit(result, 0);
  const report = JSON.parse(result.stdout.toString('utf8')) as { problems: unknown[]; skipped: unknown[] };
  assert.deepEqual([report.problems, report.skipped], [[], []]);
  await assertSameAsSource(join(to, 'source'), 'file snapshot, get --to');
  assert.deepEqual(await getfattr(join(to, 'source')), await getfattr(source), 'the folder named: getfattr');
});

test('from a file snapshot: files get --tar holds them, tar --xattrs --acls -x gives them back', async () => {
  const tar = await coffer(['files', '-r', repo, fileSnapshot, 'get', source, '--tar'], { env });
  assertExit(tar, 0);
  const to = join(work, 'from-tar-files');
  await mkdir(to);
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--acls', '-xf', '-', '-C', to], { input: tar.stdout });
  await assertSameAsSource(join(to, 'source'), 'file snapshot, tar --xattrs --acls -x');
  assert.deepEqual(await getfattr(join(to, 'source')), await getfattr(source), 'the folder named: getfattr');
});
