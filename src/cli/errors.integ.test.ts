/**
 * Black-box failures of the `coffer` binary: each documented exit code for what a user can
 * get wrong, with one line on stderr and no stack trace, and nothing destroyed on the way.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, open, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, COFFER_BIN, cofferJson, describeRun, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

const KiB = 1024;
const PASSWORD = { COFFER_PASSWORD: 'the right one' };

let work: string;
/** An encrypted repository with one snapshot of `image`. */
let repo: string;
let image: string;
let snapshot: BackupJson;

before(async () => {
  work = await makeWorkDir('errors');
  repo = join(work, 'repo');
  image = join(work, 'disk.raw');
  await writeFile(image, seededBytes(11, 256 * KiB));
  await cofferJson(['init', '-r', repo, '--block-size', '64K'], { env: PASSWORD });
  snapshot = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm1', image], { env: PASSWORD });
});
after(() => removeDir(work));

interface Case {
  title: string;
  /** Arguments; REPO, IMAGE, WORK and SNAP are replaced. */
  args: string[];
  env?: Record<string, string>;
  /** Prepares the scene in the fresh directory `dir` (WORK); may return a check to run afterwards. */
  setup?: (dir: string) => Promise<(() => Promise<void>) | void>;
  code: number;
  /** What the one stderr line says. */
  message: RegExp;
  /** Usage errors from the option parser may add a hint line. */
  hint?: boolean;
}

const cases: Case[] = [
  { title: 'wrong passphrase', args: ['snapshots', '-r', 'REPO'], env: { COFFER_PASSWORD: 'wrong' }, code: 12, message: /^coffer: the passphrase opens none of the 1 key/ },
  {
    title: 'wrong passphrase, --json: the error is a JSON line',
    args: ['snapshots', '-r', 'REPO', '--json'],
    env: { COFFER_PASSWORD: 'wrong' },
    code: 12,
    message: /^\{"type":"error","code":"E_WRONG_PASSPHRASE","message":"[^"]+"\}$/,
  },
  { title: 'wrong passphrase from a file', args: ['snapshots', '-r', 'REPO', '--password-file', 'WORK/pw'], setup: async (dir) => writeFile(join(dir, 'pw'), 'wrong\n'), code: 12, message: /passphrase/ },
  { title: 'no passphrase for an encrypted repository', args: ['snapshots', '-r', 'REPO'], code: 2, message: /is encrypted: give a passphrase/ },
  {
    title: 'sync without the destination\'s passphrase names the destination\'s variables',
    args: ['sync', '-r', 'REPO', '--to', 'WORK/dst'],
    setup: async (dir) => assertExit(await coffer(['init', '-r', join(dir, 'dst')], { env: PASSWORD }), 0),
    env: PASSWORD,
    code: 2,
    message: /dst is encrypted: give a passphrase \(COFFER_TO_PASSWORD, COFFER_TO_PASSWORD_FILE or --to-password-file\)/,
  },
  { title: 'no repository there', args: ['snapshots', '-r', 'WORK/nothing-here'], env: PASSWORD, code: 10, message: /is not a Coffer repository/ },
  { title: 'an empty directory is no repository', args: ['backup', '-r', 'WORK/empty', '--vm', 'x', 'IMAGE'], setup: (dir) => mkdir(join(dir, 'empty')), env: PASSWORD, code: 10, message: /not a Coffer repository/ },
  { title: 'no repository given', args: ['snapshots'], env: PASSWORD, code: 2, message: /no repository given/ },
  {
    title: 'config overwritten with garbage',
    args: ['snapshots', '-r', 'WORK/repo'],
    setup: async (dir) => {
      await cofferJson(['init', '-r', join(dir, 'repo')], { env: PASSWORD });
      await writeFile(join(dir, 'repo', 'config'), seededBytes(5, 300));
    },
    env: PASSWORD,
    code: 11,
    message: /config/,
  },
  {
    title: 'config truncated to half',
    args: ['verify', '-r', 'WORK/repo'],
    setup: async (dir) => {
      await cofferJson(['init', '-r', join(dir, 'repo')], { env: PASSWORD });
      const config = await readFile(join(dir, 'repo', 'config'));
      await writeFile(join(dir, 'repo', 'config'), config.subarray(0, config.length >> 1));
    },
    env: PASSWORD,
    code: 11,
    message: /config/,
  },
  { title: '-r names a file', args: ['snapshots', '-r', 'WORK/a-file'], setup: (dir) => writeFile(join(dir, 'a-file'), 'x'), env: PASSWORD, code: 10, message: /a-file is not a Coffer repository \(it is a file, not a folder\)/ },
  { title: 'init onto a file', args: ['init', '-r', 'WORK/a-file'], setup: (dir) => writeFile(join(dir, 'a-file'), 'x'), env: PASSWORD, code: 2, message: /a-file is a file, not a folder/ },
  { title: 'the config is a folder', args: ['snapshots', '-r', 'WORK/repo'], setup: async (dir) => void (await mkdir(join(dir, 'repo', 'config'), { recursive: true })), env: PASSWORD, code: 11, message: /its config is a folder/ },
  {
    title: 'the config emptied (crash debris) beside the key files: damaged, not "create one with init"',
    args: ['snapshots', '-r', 'WORK/repo'],
    setup: async (dir) => {
      await cofferJson(['init', '-r', join(dir, 'repo')], { env: PASSWORD });
      await writeFile(join(dir, 'repo', 'config'), '');
    },
    env: PASSWORD,
    code: 11,
    message: /holds a repository's objects \(keys\/[0-9a-f]+…\) but no config, or an empty one/,
  },
  { title: 'missing source disk', args: ['backup', '-r', 'REPO', '--vm', 'vm1', 'WORK/no-such-disk.raw'], env: PASSWORD, code: 3, message: /no-such-disk\.raw/ },
  { title: 'source is a directory', args: ['backup', '-r', 'REPO', '--vm', 'vm1', 'WORK'], env: PASSWORD, code: 3, message: /neither a disk image file nor a block device/ },
  {
    title: 'restore onto an existing file without --overwrite',
    args: ['restore', '-r', 'REPO', 'SNAP', '--to', 'WORK/precious'],
    setup: async (dir) => {
      await writeFile(join(dir, 'precious'), 'do not lose me\n');
      return async () => assert.equal(await readFile(join(dir, 'precious'), 'utf8'), 'do not lose me\n', 'the existing file was changed');
    },
    env: PASSWORD,
    code: 4,
    message: /exists \(add --overwrite/,
  },
  { title: 'restore into a directory that does not exist', args: ['restore', '-r', 'REPO', 'SNAP', '--to', 'WORK/no/such/dir/x.raw'], env: PASSWORD, code: 4, message: /no\/such\/dir/ },
  { title: 'unknown snapshot id', args: ['restore', '-r', 'REPO', 'deadbeef', '--to', 'WORK/x.raw'], env: PASSWORD, code: 2, message: /no snapshot deadbeef/ },
  { title: 'not a snapshot reference', args: ['restore', '-r', 'REPO', 'yesterday', '--to', 'WORK/x.raw'], env: PASSWORD, code: 2, message: /is not a snapshot id/ },
  { title: 'a snapshot prefix of 3 digits (it said "not a snapshot id")', args: ['restore', '-r', 'REPO', 'abc', '--to', 'WORK/x.raw'], env: PASSWORD, code: 2, message: /"abc" is too short a snapshot prefix: give at least 4/ },
  { title: 'an unknown snapshot id in capitals is looked up in lower case', args: ['restore', '-r', 'REPO', 'ABCD1234', '--to', 'WORK/x.raw'], env: PASSWORD, code: 2, message: /no snapshot abcd1234 in/ },
  { title: 'no snapshot of that VM', args: ['restore', '-r', 'REPO', 'other:latest', '--to', 'WORK/x.raw'], env: PASSWORD, code: 2, message: /no snapshot of VM other/ },
  { title: 'unknown disk', args: ['restore', '-r', 'REPO', 'SNAP', '--disk', 'disk7', '--to', 'WORK/x.raw'], env: PASSWORD, code: 2, message: /has no disk disk7/ },
  { title: 'forget an unknown snapshot', args: ['forget', '-r', 'REPO', 'SNAP', 'abcd1234'], env: PASSWORD, code: 2, message: /abcd1234/ },
  { title: 'restore without --to', args: ['restore', '-r', 'REPO', 'SNAP'], env: PASSWORD, code: 2, message: /--to PATH is required/ },
  { title: 'backup without --vm', args: ['backup', '-r', 'REPO', 'IMAGE'], env: PASSWORD, code: 2, message: /--vm NAME is required/ },
  { title: 'backup with a bad --time', args: ['backup', '-r', 'REPO', '--vm', 'v', '--time', 'noon', 'IMAGE'], env: PASSWORD, code: 2, message: /--time noon/ },
  { title: 'init with a compression level that is no number', args: ['init', '-r', 'WORK/new', '--compression-level', 'fast'], env: PASSWORD, code: 2, message: /--compression-level fast: give a zstd level from 0 to 19/ },
  { title: 'tape export over the repository\'s own config (it destroyed the repository)', args: ['tape', 'export', '-r', 'REPO', 'SNAP', '--to', 'REPO/config', '--overwrite'], env: PASSWORD, code: 2, message: /--to .*config is inside the repository .*: writing there would damage it/ },
  { title: 'restore into the repository\'s folder', args: ['restore', '-r', 'REPO', 'SNAP', '--to', 'REPO/restored.raw'], env: PASSWORD, code: 2, message: /is inside the repository/ },
  { title: 'files get into the repository through a symlink', args: ['files', '-r', 'REPO', 'SNAP', 'get', '--to', 'WORK/into-repo/x', 'disk0:/'], setup: (dir) => symlink(repo, join(dir, 'into-repo')), env: PASSWORD, code: 2, message: /is inside the repository/ },
  { title: 'tape export to standard output (it made a file named -)', args: ['tape', 'export', '-r', 'REPO', 'SNAP', '--to', '-'], env: PASSWORD, code: 2, message: /--to -: tape export writes a file or a tape device/ },
  { title: 'tape export to an empty --to (it said "cannot open" and exited 4)', args: ['tape', 'export', '-r', 'REPO', 'SNAP', '--to', ''], env: PASSWORD, code: 2, message: /tape export needs --to FILE_OR_DEVICE/ },
  { title: 'init with a bad block size', args: ['init', '-r', 'WORK/new', '--block-size', '3K'], env: PASSWORD, code: 2, message: /block size/ },
  { title: 'init with an empty passphrase file', args: ['init', '-r', 'WORK/new', '--password-file', 'WORK/empty'], setup: (dir) => writeFile(join(dir, 'empty'), '\n'), code: 2, message: /empty is empty: an empty passphrase is not allowed/ },
  { title: 'a passphrase file that never ends (/dev/zero)', args: ['snapshots', '-r', 'REPO', '--password-file', '/dev/zero'], code: 2, message: /holds more than 64 KiB/ },
  {
    title: 'a named pipe as the disk (opening it would wait for a writer forever)',
    args: ['backup', '-r', 'REPO', '--vm', 'x', 'WORK/disk.fifo'],
    setup: async (dir) => {
      execFileSync('mkfifo', [join(dir, 'disk.fifo')]);
    },
    env: PASSWORD,
    code: 3,
    message: /disk\.fifo is a named pipe, not a disk image file or block device/,
  },
  { title: 'init over an existing repository', args: ['init', '-r', 'REPO'], env: PASSWORD, code: 2, message: /already holds a repository/ },
  { title: 'unknown command', args: ['frobnicate'], code: 2, message: /unknown command/, hint: true },
  { title: 'unknown option, --json: the error is a JSON line', args: ['snapshots', '-r', 'REPO', '--colour', '--json'], env: PASSWORD, code: 2, message: /^\{"type":"error","code":"E_USAGE","message":"unknown option '--colour'"\}$/ },
  { title: 'unknown option', args: ['snapshots', '-r', 'REPO', '--colour'], env: PASSWORD, code: 2, message: /unknown option/, hint: true },
  { title: 'backup without disks', args: ['backup', '-r', 'REPO', '--vm', 'v'], env: PASSWORD, code: 2, message: /name at least one disk image .*--qemu/ },
  // An unset shell variable: as a filter an empty name matched nothing (snapshots printed none, exit 0).
  { title: 'an empty --vm, as a filter', args: ['snapshots', '-r', 'REPO', '--vm', ''], env: PASSWORD, code: 2, message: /--vm '': give a VM's name/ },
  { title: 'an empty --vm to sync', args: ['sync', '-r', 'REPO', '--to', 'REPO', '--vm', ''], env: PASSWORD, code: 2, message: /--vm '': give a VM's name/ },
];

for (const c of cases) {
  test(`exit ${c.code}: ${c.title}`, async () => {
    const dir = await makeWorkDir('case');
    try {
      const check = await c.setup?.(dir);
      const args = c.args.map((arg) => arg.replace('REPO', repo).replace('IMAGE', image).replace('WORK', dir).replace('SNAP', snapshot.id.slice(0, 6)));
      const result = await coffer(args, { env: c.env ?? {}, timeoutMs: 30_000 });
      assertExit(result, c.code);
      assert.equal(result.stdout.length, 0, `nothing belongs on stdout:\n${describeRun(result)}`);
      if (c.hint) {
        assert.doesNotMatch(result.stderr, /^\s+at /m);
        assert.match(result.stderr.split('\n')[0]!, c.message);
      } else {
        assert.match(assertOneLineError(result), c.message);
      }
      if (check) await check();
    } finally {
      await removeDir(dir);
    }
  });
}

test('the failures above left the repository whole: one snapshot, verify passes', async () => {
  const listed = await cofferJson<{ id: string }[]>(['snapshots', '-r', repo], { env: PASSWORD });
  assert.deepEqual(listed.map((s) => s.id), [snapshot.id]);
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], { env: PASSWORD }), 0);
});

test('three coffer init on one empty place at once: one repository, the others exit 2 saying another init won', async () => {
  const place = join(work, 'raced');
  const runs = await Promise.all(['one', 'two', 'three'].map((passphrase) => coffer(['init', '-r', place], { env: { COFFER_PASSWORD: passphrase } })));
  const winners = runs.filter((run) => run.code === 0);
  assert.equal(winners.length, 1, runs.map(describeRun).join('\n'));
  for (const run of runs.filter((r) => r.code !== 0)) {
    assertExit(run, 2);
    assert.match(assertOneLineError(run), /already holds a repository|is not empty|another 'coffer init' created a repository here/);
  }
  const won = ['one', 'two', 'three'][runs.indexOf(winners[0] as (typeof runs)[number])] as string;
  const keys = await cofferJson<{ storedDigestFingerprint: string | null }[]>(['key', 'list', '-r', place], { env: { COFFER_PASSWORD: won } });
  assert.equal(keys.length, 1);
  assert.match(keys[0]?.storedDigestFingerprint ?? '', /^[0-9a-f]{64}$/, 'key list --json names the stored-digest fingerprint');
  assert.ok((winners[0] as (typeof runs)[number]).stdout.toString().includes(keys[0]?.storedDigestFingerprint as string), 'the one init printed');
  assertExit(await coffer(['verify', '-r', place, '--stored'], { env: { COFFER_PASSWORD: won } }), 0);
});

test('the passphrase from a pipe (--password-file <(…), a real pipe from bash): read once, the repository opens', async () => {
  const script = `exec "$0" "$1" snapshots -r "$2" --json --password-file <(printf '%s\\n' "$3")`;
  const child = spawn('bash', ['-c', script, process.execPath, COFFER_BIN, repo, PASSWORD.COFFER_PASSWORD], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (bytes: Buffer) => (stdout += bytes.toString()));
  child.stderr.on('data', (bytes: Buffer) => (stderr += bytes.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr);
  assert.deepEqual((JSON.parse(stdout) as { id: string }[]).map((s) => s.id), [snapshot.id]);
});

test('backup --stdin with a folder redirected in: exit 2, nothing saved (it stored an empty file and said saved)', async () => {
  const folder = await open(work, 'r');
  try {
    const child = spawn(process.execPath, [COFFER_BIN, 'backup', '-r', repo, '--stdin', '--host', 'h', '--stdin-name', 'dump.sql'], { stdio: [folder.fd, 'pipe', 'pipe'], env: { ...process.env, ...PASSWORD } });
    let stderr = '';
    child.stderr?.on('data', (bytes: Buffer) => (stderr += bytes.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /^coffer: --stdin reads a stream, and standard input is a folder/);
  } finally {
    await folder.close();
  }
  const listed = await cofferJson<{ id: string }[]>(['snapshots', '-r', repo], { env: PASSWORD });
  assert.deepEqual(listed.map((s) => s.id), [snapshot.id]);
});
