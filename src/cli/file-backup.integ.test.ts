/**
 * File-level backup end to end, as separate `coffer` processes on a real tree: a copy of
 * /usr/share/doc, a 20 MB file, a sparse file, hard links, symlinks, a FIFO, unicode names,
 * xattrs (setfattr) and ACLs (setfacl). Backup, modify, incremental (unchanged files not
 * read), restore both snapshots and compare with the source by `diff -r`, `getfattr`,
 * `getfacl`, `stat` and `du`; a file growing while read; `--stdin`; hooks failing and timing
 * out; `files ls/cat/find`; `verify --read-data` and `prune` on file snapshots.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTools } from '../testing/index.js';
import { assertExit, COFFER_BIN, coffer, makeWorkDir, removeDir } from './cli-harness.js';
import { assertRestoredSame, makeFileTestTree, sh as shIn } from './file-test-tree.js';

const env = { COFFER_PASSWORD: 'files test' };
const opts = { env, timeoutMs: 120_000 };
let work: string;
let repo: string;
let src: string;

async function sh(script: string, cwd = work): Promise<string> {
  return shIn(script, cwd, env);
}

interface Json {
  id: string;
  bytesRead: number;
  entries: number;
  warnings: { path: string; message: string }[];
}

async function backup(args: string[], code = 0): Promise<Json> {
  const result = await coffer(['backup', '-r', repo, '--json', ...args], opts);
  assertExit(result, code);
  return JSON.parse(result.stdout.toString()) as Json;
}

before(async () => {
  await requireTools('setfattr', 'getfattr', 'setfacl', 'getfacl');
  work = await makeWorkDir('files');
  repo = join(work, 'repo');
  src = join(work, 'src');
  await makeFileTestTree(src);
  assertExit(await coffer(['init', '-r', repo], opts), 0);
});
after(() => removeDir(work));

test('backup, modify, incremental, restore both: content and metadata as the source had them', async () => {
  const first = await backup(['--files', src, '--host', 'h1']);
  assert.equal(first.warnings.length, 0);
  const out1 = join(work, 'out1');
  assertExit(await coffer(['restore', '-r', repo, first.id, '--to', out1, '--verify'], opts), 0);
  await assertRestoredSame(src, join(out1, src));

  // Edit, delete, add, chmod, touch.
  await sh(`echo more >> '${src}/a'; rm '${src}/bash/copyright' 2>/dev/null || true; echo new > '${src}/added'
    chmod 600 '${src}/sub/a-link'; touch -d '2020-01-01 00:00:00.5' '${src}/fifo'`);
  const second = await backup(['--files', src, '--host', 'h1']);
  // Unchanged files (the 20 MB one included) were not read: only `a` and `added` were.
  assert.ok(second.bytesRead < 100, `incremental read ${second.bytesRead} bytes`);
  const out2 = join(work, 'out2');
  assertExit(await coffer(['restore', '-r', repo, second.id, '--to', out2], opts), 0);
  await assertRestoredSame(src, join(out2, src));
  // The first snapshot still restores as the tree was.
  const again = join(work, 'out1b');
  assertExit(await coffer(['restore', '-r', repo, first.id, '--to', again, '--include', '/**/a', '--include', 'big'], opts), 0);
  assert.equal(await fs.readFile(join(again, src, 'a'), 'utf8'), 'hello\n');
  await assert.rejects(fs.stat(join(again, src, 'added')));
  await assert.rejects(fs.stat(join(again, src, 'bash')));

  // --force reads everything again.
  const forced = await backup(['--files', src, '--host', 'h1', '--force']);
  assert.ok(forced.bytesRead > 20_000_000);

  // files ls / cat / find on a file snapshot.
  const ls = await coffer(['files', '-r', repo, second.id, 'ls', `${src}/sub`], opts);
  assertExit(ls, 0);
  assert.deepEqual(ls.stdout.toString().trim().split('\n').sort(), ['a-link', 'sym']);
  // Its files are its one volume, files, as the API names it: files:/PATH and :/PATH are /PATH.
  for (const target of [`files:${src}/sub`, `:${src}/sub`]) assert.deepEqual((await coffer(['files', '-r', repo, second.id, 'ls', target], opts)).stdout, ls.stdout, target);
  assertExit(await coffer(['files', '-r', repo, second.id, 'ls', `disk0:${src}`], opts), 2);
  const cat = await coffer(['files', '-r', repo, second.id, 'cat', `${src}/a`], opts);
  assert.equal(cat.stdout.toString(), 'hello\nmore\n');
  const big = await coffer(['files', '-r', repo, second.id, 'cat', `${src}/big`], opts);
  assert.ok(big.stdout.equals(await fs.readFile(join(src, 'big'))));
  const listed = await coffer(['snapshots', '-r', repo, '--vm', 'h1'], opts);
  assert.match(listed.stdout.toString(), new RegExp(`files: ${src}`));
  const find = await coffer(['files', '-r', repo, second.id, 'find', src, '--name', 'ünï*'], opts);
  assert.equal(find.stdout.toString().trim(), `${src}/ünï cødé ✓`);

  // verify --read-data and prune see the file snapshots' chunks and trees.
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
  assertExit(await coffer(['forget', '-r', repo, first.id], opts), 0);
  assertExit(await coffer(['prune', '-r', repo], opts), 0);
  const out3 = join(work, 'out3');
  assertExit(await coffer(['restore', '-r', repo, second.id, '--to', out3, '--verify'], opts), 0);
  await assertRestoredSame(src, join(out3, src));
});

test('a file growing while read is reported, the backup goes on with exit code 18', async () => {
  const dir = join(work, 'growing');
  await fs.mkdir(dir);
  await sh(`head -c 30000000 /dev/zero | tr '\\0' 'a' > '${dir}/log'; echo steady > '${dir}/steady'`);
  const writer = startGrowing(join(dir, 'log'));
  try {
    const result = await backup(['--files', dir, '--host', 'grow'], 18);
    assert.ok(result.warnings.some((w) => w.path === `${dir}/log` && w.message === 'changed while read'), JSON.stringify(result.warnings));
  } finally {
    await writer.stop();
  }
});

/** Appends to a file every millisecond until stopped. */
function startGrowing(path: string): { stop: () => Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      await fs.appendFile(path, 'more data\n');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

test('--stdin stores a dump as one file, restored byte for byte', async () => {
  const dump = join(work, 'dump.sql');
  await sh(`seq 1 300000 | sed 's/^/INSERT INTO t VALUES (/' > '${dump}'`);
  const out = await sh(`'${process.execPath}' '${COFFER_BIN}' backup -r '${repo}' --stdin --stdin-name db.sql --host dbhost --json < '${dump}'`);
  const { id } = JSON.parse(out) as Json;
  const cat = await coffer(['files', '-r', repo, id, 'cat', '/db.sql'], opts);
  assert.ok(cat.stdout.equals(await fs.readFile(dump)));
  const to = join(work, 'stdin-out');
  assertExit(await coffer(['restore', '-r', repo, id, '--to', to], opts), 0);
  assert.ok((await fs.readFile(join(to, 'db.sql'))).equals(await fs.readFile(dump)));
});

test('hooks: a failing pre-hook stops the backup, the post-hook always runs, a hung hook is killed at the timeout', async () => {
  const dir = join(work, 'hooked');
  await fs.mkdir(dir);
  await fs.writeFile(join(dir, 'f'), 'x');
  const marks = join(work, 'marks');
  const post = `echo "post $COFFER_RESULT" >> '${marks}'`;
  const failed = await coffer(['backup', '-r', repo, '--files', dir, '--pre-hook', 'exit 3', '--post-hook', post], opts);
  assertExit(failed, 17);
  assert.match(failed.stderr, /pre-backup hook "exit 3" exited with 3/);
  const started = Date.now();
  const hung = await coffer(['backup', '-r', repo, '--files', dir, '--pre-hook', 'sleep 30 & sleep 30', '--hook-timeout', '1s', '--post-hook', post], opts);
  assertExit(hung, 17);
  assert.ok(Date.now() - started < 15_000);
  assert.match(hung.stderr, /did not end within 1 s and was killed/);
  const ok = await coffer(['backup', '-r', repo, '--files', dir, '--pre-hook', 'true', '--post-hook', post], opts);
  assertExit(ok, 0);
  // A backup that fails (no such repository) still runs the post hook.
  const broken = await coffer(['backup', '-r', join(work, 'nothing-here'), '--files', dir, '--post-hook', post], opts);
  assertExit(broken, 10);
  assert.equal(await fs.readFile(marks, 'utf8'), 'post failed\npost failed\npost ok\npost failed\n');
});
