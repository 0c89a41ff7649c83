/**
 * `coffer diff` of file snapshots (`coffer backup --files`): a real tree is backed up,
 * changed in every way the letters tell (content with and without a new mtime, mode, mtime
 * only, an extended attribute, a symlink's target, a type, files and folders added and
 * removed, a name that is not UTF-8), and backed up again. The reported paths are exactly the
 * changes made; a large unchanged folder is skipped by its tree id without being read.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile, rm, chmod, symlink, utimes, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTools } from '../testing/index.js';
import { assertExit, coffer, cofferJson, makeWorkDir, removeDir, runTool, type BackupJson } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'diff files' };
const UNCHANGED_FOLDERS = 40;

interface ChangeJson {
  change: string;
  path: string;
  pathBytes?: string;
  type: string;
  was?: string;
  size?: number;
}
interface FilesDiffJson {
  kind: string;
  changes: ChangeJson[];
  counts: Record<'files' | 'directories' | 'others', Record<string, number>>;
  bytesAdded: number;
  bytesRemoved: number;
  treesRead: number;
  treesSkipped: number;
  problems: unknown[];
}

let work: string;
let repo: string;
let src: string;
let first: string;
let second: string;
/** A name holding the byte 0xE9 (Latin-1 é), not UTF-8. */
const RAW_NAME = Buffer.from([0x63, 0x61, 0x66, 0xe9]);

before(async () => {
  await requireTools('setfattr');
  work = await makeWorkDir('diff-files');
  repo = join(work, 'repo');
  src = join(work, 'src');
  const old = new Date('2024-01-02T03:04:05Z');
  const file = async (rel: string, text: string) => {
    await mkdir(join(src, rel, '..'), { recursive: true });
    await writeFile(join(src, rel), text);
    await utimes(join(src, rel), old, old);
  };
  for (let i = 0; i < UNCHANGED_FOLDERS; i++) await file(`keep/d${String(i).padStart(2, '0')}/f.txt`, `kept ${i}\n`);
  await file('work/appended.txt', 'first line\n');
  await file('work/same-size.txt', 'AAAAAAAA\n');
  await file('work/chmod.txt', 'mode\n');
  await file('work/touched.txt', 'touch\n');
  await file('work/xattr.txt', 'attr\n');
  await file('work/removed.txt', 'gone soon\n');
  await file('work/old-dir/inner.txt', 'inner\n');
  await file('work/becomes-dir', 'a file now\n');
  await symlink('appended.txt', join(src, 'work/link'));
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  first = (await cofferJson<BackupJson>(['backup', '-r', repo, '--files', src, '--host', 'h1'], { env })).id;

  await writeFile(join(src, 'work/appended.txt'), 'first line\nsecond line\n');
  await writeFile(join(src, 'work/same-size.txt'), 'BBBBBBBB\n');
  await utimes(join(src, 'work/same-size.txt'), old, old); // content changed under its old mtime
  await chmod(join(src, 'work/chmod.txt'), 0o600);
  await utimes(join(src, 'work/touched.txt'), new Date('2025-05-05T05:05:05Z'), new Date('2025-05-05T05:05:05Z'));
  const attr = await runTool('setfattr', ['-n', 'user.note', '-v', 'hello', join(src, 'work/xattr.txt')]);
  assert.equal(attr.code, 0, attr.stderr);
  await rm(join(src, 'work/removed.txt'));
  await rm(join(src, 'work/old-dir'), { recursive: true });
  await unlink(join(src, 'work/becomes-dir'));
  await mkdir(join(src, 'work/becomes-dir'));
  await writeFile(join(src, 'work/becomes-dir/child.txt'), 'child\n');
  await unlink(join(src, 'work/link'));
  await symlink('same-size.txt', join(src, 'work/link'));
  await mkdir(join(src, 'work/new-dir'));
  await writeFile(join(src, 'work/new-dir/new.txt'), 'brand new\n');
  await writeFile(Buffer.concat([Buffer.from(`${src}/work/`), RAW_NAME]), 'raw name\n');
  second = (await cofferJson<BackupJson>(['backup', '-r', repo, '--files', src, '--host', 'h1'], { env })).id;
});
after(() => removeDir(work));

test('file snapshots: each change reported with its letter, unchanged folders skipped by tree id', async () => {
  const diff = await cofferJson<FilesDiffJson>(['diff', '-r', repo, first, second], { env });
  assert.equal(diff.kind, 'files');
  const w = `${src}/work`;
  const raw = `${w}/caf\udce9`;
  assert.deepEqual(diff.changes.map((c) => [c.change, c.path, c.type, ...(c.was !== undefined ? [c.was] : [])]), [
    ['M', `${w}/appended.txt`, 'file'],
    ['T', `${w}/becomes-dir`, 'directory', 'file'],
    ['+', `${w}/becomes-dir/child.txt`, 'file'],
    ['+', raw, 'file'],
    ['U', `${w}/chmod.txt`, 'file'],
    ['M', `${w}/link`, 'symlink'],
    ['+', `${w}/new-dir`, 'directory'],
    ['+', `${w}/new-dir/new.txt`, 'file'],
    ['-', `${w}/old-dir`, 'directory'],
    ['-', `${w}/old-dir/inner.txt`, 'file'],
    ['-', `${w}/removed.txt`, 'file'],
    ['M', `${w}/same-size.txt`, 'file'],
    ['U', `${w}/touched.txt`, 'file'],
    ['U', `${w}/xattr.txt`, 'file'],
  ]);
  assert.equal(diff.changes.find((c) => c.path === raw)?.pathBytes, Buffer.concat([Buffer.from(`${w}/`), RAW_NAME]).toString('hex'));
  assert.deepEqual(diff.counts.files, { '+': 3, '-': 2, M: 2, T: 0, U: 3 });
  assert.deepEqual(diff.counts.directories, { '+': 1, '-': 1, M: 0, T: 1, U: 0 });
  assert.deepEqual(diff.counts.others, { '+': 0, '-': 0, M: 1, T: 0, U: 0 });
  // Small files are one chunk each: added = new files and new versions, removed = old ones.
  const added = ['child\n', 'brand new\n', 'raw name\n', 'first line\nsecond line\n', 'BBBBBBBB\n'];
  const removed = ['gone soon\n', 'inner\n', 'a file now\n', 'first line\n', 'AAAAAAAA\n'];
  assert.equal(diff.bytesAdded, added.join('').length);
  assert.equal(diff.bytesRemoved, removed.join('').length);
  // keep/ and its 40 folders are one tree id in both snapshots: read by neither side.
  assert.ok(diff.treesSkipped >= 1);
  const depth = src.split('/').length; // the folders above src/ in the snapshot, src/ and work/
  assert.ok(diff.treesRead <= 2 * (depth + 4), `${diff.treesRead} trees read, keep/ holds ${UNCHANGED_FOLDERS} folders`);
  assert.deepEqual(diff.problems, []);
});

test('file snapshots as text: letters, printable names, folders with a slash, the counts', async () => {
  const result = await coffer(['diff', '-r', repo, first.slice(0, 8), second], { env });
  assertExit(result, 0);
  const out = result.stdout.toString();
  const w = `${src}/work`;
  assert.match(out, /^comparing [0-9a-f]{8} \(h1, .*\) with [0-9a-f]{8} \(h1, .*\)\n\n/);
  for (const line of [`M    ${w}/appended.txt`, `T    ${w}/becomes-dir/  (was a file)`, `+    ${w}/caf\\xe9`, `-    ${w}/old-dir/`, `U    ${w}/touched.txt`]) {
    assert.ok(out.includes(`\n${line}\n`), `${line} in:\n${out}`);
  }
  assert.match(out, /\nFiles: +3 added, 2 removed, 2 modified, 0 type changed, 3 metadata only\n/);
  assert.match(out, /\nFolders: +1 added, 1 removed, 0 modified, 1 type changed, 0 metadata only\n/);
  assert.ok(out.includes('\nAdded:   57 B\nRemoved: 47 B\n'), out);

  const same = await cofferJson<FilesDiffJson>(['diff', '-r', repo, second, second], { env });
  assert.deepEqual(same.changes, []);
  assert.equal(same.treesRead, 0, 'the same root tree: nothing read');
  const disk = await coffer(['diff', '-r', repo, first, second, '--disk', '0'], { env });
  assertExit(disk, 2);
});
