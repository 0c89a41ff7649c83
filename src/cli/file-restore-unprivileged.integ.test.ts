/**
 * A file snapshot restored by a user other than root keeps the `user.*` extended attributes
 * of read-only files and folders: the attributes are set before the mode, which takes the
 * write permission that setting them needs (restore set the mode first, and lost them with
 * `lsetxattr failed: Permission denied`, exit 4, where `files get --to` kept them). The
 * snapshot is made as root; `restore` and `files get --to` run as `nobody` (no capability
 * to override permissions), and getfattr reads the result.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, lstat, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTools } from '../testing/index.js';
import { assertExit, coffer, describeRun, makeWorkDir, removeDir } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'unprivileged' };
/** Debian's `nobody`/`nogroup`; as a user other than root, the tests run as that user itself. */
const NOBODY = { uid: 65534, gid: 65534 };
const asRoot = process.getuid?.() === 0;
/** Each entry, its mode and its `user.k` value. */
const ENTRIES: [string, number, string][] = [
  ['ro.txt', 0o444, 'file'],
  ['ro-dir', 0o555, 'folder'],
  ['ro-dir/inner.txt', 0o444, 'inner'],
];
let work: string;
let repo: string;
let id: string;
/** Why the tests cannot run (nobody cannot reach Node or this checkout, e.g. under /root), or undefined. */
let unreachable: string | undefined;

before(async () => {
  await requireTools('setfattr', 'getfattr', 'chown');
  if (asRoot) {
    const probe = await coffer(['--version'], { as: NOBODY });
    if (probe.code !== 0) unreachable = `nobody cannot run coffer from this checkout: ${describeRun(probe)}`;
  }
  work = await makeWorkDir('unprivileged');
  repo = join(work, 'repo');
  const source = join(work, 'source');
  await mkdir(join(source, 'ro-dir'), { recursive: true });
  await writeFile(join(source, 'ro.txt'), 'read only\n');
  await writeFile(join(source, 'ro-dir/inner.txt'), 'inside\n');
  for (const [path, , value] of ENTRIES) execFileSync('setfattr', ['-n', 'user.k', '-v', value, join(source, path)]);
  for (const [path, mode] of [...ENTRIES].reverse()) await chmod(join(source, path), mode);
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  const backup = await coffer(['backup', '-r', repo, '--files', source, '--host', 'ro', '--json'], { env });
  assertExit(backup, 0);
  id = (JSON.parse(backup.stdout.toString('utf8')) as { id: string }).id;
  if (asRoot) {
    execFileSync('chown', ['-R', `${NOBODY.uid}:${NOBODY.gid}`, repo]); // the restoring user reads the repository and takes its lock
    await chown(work, NOBODY.uid, NOBODY.gid);
  }
});
after(async () => {
  if (work !== undefined && !asRoot) execFileSync('chmod', ['-R', 'u+w', work]); // read-only folders: their entries removed by their owner
  await removeDir(work);
});

/** Runs `coffer` as the unprivileged user, its home in the work folder. */
const asUser = (args: string[]) => coffer(args, { env: { ...env, HOME: work, XDG_CACHE_HOME: join(work, 'cache') }, ...(asRoot ? { as: NOBODY } : {}) });

/** `getfattr --only-values -n user.k` of one path ('' when it has none). */
function userK(file: string): string {
  try {
    return execFileSync('getfattr', ['--only-values', '--absolute-names', '-n', 'user.k', file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString('utf8');
  } catch {
    return '';
  }
}

test('restore of a file snapshot as a user other than root keeps user.* attributes of read-only files and folders', async (t) => {
  if (unreachable !== undefined) return t.skip(unreachable);
  const to = join(work, 'restored');
  const result = await asUser(['restore', '-r', repo, id, '--to', to]);
  assertExit(result, 0);
  assert.doesNotMatch(result.stderr, /extended attribute/, describeRun(result));
  for (const [path, mode, value] of ENTRIES) {
    const restored = join(to, work, 'source', path); // restore keeps the backed-up folder's absolute path
    assert.equal(userK(restored), value, `${path}: user.k`);
    const stat = await lstat(restored);
    assert.equal(stat.mode & 0o7777, mode, `${path}: mode`);
    if (asRoot) assert.equal(stat.uid, NOBODY.uid, `${path}: written by nobody, not root`);
  }
});

test('files get --to from the same snapshot, as that user, keeps them too', async (t) => {
  if (unreachable !== undefined) return t.skip(unreachable);
  const to = join(work, 'got');
  const result = await asUser(['files', '-r', repo, id, 'get', join(work, 'source'), '--to', to, '--json']);
  assertExit(result, 0);
  const report = JSON.parse(result.stdout.toString('utf8')) as { problems: unknown[]; skipped: unknown[] };
  assert.deepEqual([report.problems, report.skipped], [[], []]);
  for (const [path, , value] of ENTRIES) assert.equal(userK(join(to, 'source', path)), value, `${path}: user.k`);
});
