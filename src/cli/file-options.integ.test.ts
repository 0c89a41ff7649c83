/**
 * The options and edges of file backup, through the `coffer` binary on real trees (as root):
 * `--exclude` (names and paths), `--exclude-file`, `--exclude-caches` with a real
 * CACHEDIR.TAG (and a false one), `--one-file-system` across a tmpfs mounted inside the tree,
 * `--exclude-larger-than`; device nodes (mknod) restored with their numbers; a file deleted
 * while the backup runs (reported `vanished`, exit 18); and trees naming `..`, `a/b` or NUL,
 * written through the repository API as a hostile writer would, refused at restore with one
 * line and exit 11, nothing written outside the target.
 */
import assert from 'node:assert/strict';
import { readdirSync, unlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LocalBackend, openRepository, putFileTree, saveSnapshot, type TreeEntry } from '../repo/index.js';
import { requireTools } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, runTool, startCoffer } from './cli-harness.js';
import { sh } from './file-test-tree.js';

const PASS = 'file options';
const opts = { env: { COFFER_PASSWORD: PASS }, timeoutMs: 120_000 };
const CACHE_TAG = 'Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag.\n';

interface BackupJson {
  id: string;
  warnings: { path: string; message: string }[];
}

let work: string;
let repo: string;
let src: string;
let mounted = false;

before(async () => {
  await requireTools('mount', 'umount', 'mknod');
  work = await makeWorkDir('file-options');
  repo = join(work, 'repo');
  src = join(work, 'src');
  await fs.mkdir(src);
  await sh(
    `mkdir -p deep/node_modules/pkg var/cache cachedir faketag mnt dev
    echo keep > keep.txt; echo tmp > x.tmp; echo tmp > deep/a.tmp; echo js > deep/node_modules/pkg/index.js
    echo junk > var/cache/junk; echo kept > deep/var-cache-elsewhere; echo log > app.log; echo log > deep/b.log
    printf '${CACHE_TAG}' > cachedir/CACHEDIR.TAG; echo cached > cachedir/data
    echo 'Signature: not the right one' > faketag/CACHEDIR.TAG; echo kept > faketag/data
    head -c 2000000 /dev/urandom > large.bin; head -c 1000 /dev/urandom > small.bin
    mknod dev/char c 1 3; mknod dev/block b 7 200; chmod 640 dev/block; chown 65534:65534 dev/char`,
    src,
  );
  await fs.writeFile(join(work, 'patterns'), '# logs\n*.log\n\n');
  assert.equal((await runTool('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', join(src, 'mnt')])).code, 0);
  mounted = true;
  await fs.writeFile(join(src, 'mnt', 'on-tmpfs'), 'other filesystem');
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  assertExit(await coffer(['init', '--format', '1', '-r', repo], opts), 0);
});
after(async () => {
  if (mounted) await runTool('umount', [join(src, 'mnt')]);
  await removeDir(work);
});

/** Every path below `dir`, relative, sorted (`find` as the oracle). */
async function listing(dir: string): Promise<string[]> {
  return (await sh('find . -mindepth 1 | sort', dir)).trim().split('\n');
}

test('excludes, caches, one filesystem, size limit: exactly what they leave out is left out; device nodes restored', async () => {
  const result = await cofferJson<BackupJson>(
    ['backup', '-r', repo, '--files', src, '--host', 'opts', '--exclude', '*.tmp', '--exclude', 'node_modules', '--exclude', `${src}/var/cache/**`,
      '--exclude-file', join(work, 'patterns'), '--exclude-caches', '--one-file-system', '--exclude-larger-than', '1M'],
    opts,
  );
  assert.deepEqual(result.warnings, []);
  const out = join(work, 'out');
  assertExit(await coffer(['restore', '-r', repo, result.id, '--to', out], opts), 0);
  assert.deepEqual(await listing(join(out, src)), [
    './cachedir', './cachedir/CACHEDIR.TAG', // the tag kept, the contents left out
    './deep', './deep/var-cache-elsewhere',
    './dev', './dev/block', './dev/char',
    './faketag', './faketag/CACHEDIR.TAG', './faketag/data', // a tag without the signature excludes nothing
    './keep.txt',
    './mnt', // the mount point, kept empty
    './small.bin',
    './var', './var/cache',
  ]);
  // Device nodes: type, numbers, mode and owner as the source's.
  const devices = (dir: string) => sh(`stat -c '%n %F %t:%T %a %u:%g' dev/char dev/block`, dir);
  assert.equal(await devices(join(out, src)), await devices(src));

  // Without --one-file-system the tmpfs is crossed.
  const crossing = await cofferJson<BackupJson>(['backup', '-r', repo, '--files', src, '--host', 'opts-all'], opts);
  const cat = await coffer(['files', '-r', repo, crossing.id, 'cat', `${src}/mnt/on-tmpfs`], opts);
  assertExit(cat, 0);
  assert.equal(cat.stdout.toString(), 'other filesystem');
  const large = await coffer(['files', '-r', repo, crossing.id, 'cat', `${src}/large.bin`], opts);
  assert.ok(large.stdout.equals(await fs.readFile(join(src, 'large.bin'))));
});

test('a missing --exclude-file is a one-line usage error', async () => {
  const result = await coffer(['backup', '-r', repo, '--files', src, '--exclude-file', join(work, 'no-such-file')], opts);
  assertExit(result, 2);
  assert.match(assertOneLineError(result), /--exclude-file .*no-such-file/);
});

test('files deleted while the backup runs are reported as vanished; the backup goes on and exits 18', async () => {
  const dir = join(work, 'vanishing');
  await fs.mkdir(dir);
  // Files over 1 MiB are read asynchronously (a small file is opened, read and closed in one
  // synchronous stretch, too short for /proc to show), and the upload limit keeps the backup
  // going for seconds: a file is seen open long before the last ones are reached.
  await sh('for i in $(seq 100 139); do head -c 1310720 /dev/urandom > f$i; done; echo stays > zz-stays-not', dir);
  const running = startCoffer(['backup', '-r', repo, '--json', '--files', dir, '--host', 'vanish', '--limit-upload', '8M'], opts);
  // As soon as coffer holds one of the files open, the others are deleted under it.
  const pid = running.child.pid as number;
  const deadline = Date.now() + 60_000;
  let deleted = false;
  while (!deleted && Date.now() < deadline) {
    const fds = await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (target.startsWith(`${dir}/f`)) {
        // All at once and last-first: the backup reads several files at a time in name order, so
        // the files it reaches last are gone before it can open them (one await per file gave a
        // fast machine time to open all 300 first).
        const names = readdirSync(dir).filter((name) => name.startsWith('f')).sort().reverse();
        for (const name of names) unlinkSync(join(dir, name));
        deleted = true;
        break;
      }
    }
    if (!deleted) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const result = await running.done;
  assert.ok(deleted, 'the backup never opened a file of the directory');
  assertExit(result, 18);
  const report = JSON.parse(result.stdout.toString()) as BackupJson;
  const vanished = report.warnings.filter((w) => w.message === 'vanished');
  assert.ok(vanished.length > 0, JSON.stringify(report.warnings));
  assert.ok(vanished.every((w) => w.path.startsWith(`${dir}/f`)));
  assert.match(result.stderr, /^\{"type":"warning","path":"[^"]*\/vanishing\/f\d+","message":"vanished"\}$/m); // --json: warnings as JSON lines
  // The snapshot exists and holds what was read.
  const ls = await coffer(['files', '-r', repo, report.id, 'ls', dir], opts);
  assertExit(ls, 0);
  assert.ok(ls.stdout.toString().includes('zz-stays-not'));
});

test('a tree naming "..", "a/b" or NUL is refused at restore, nothing written outside the target', async () => {
  const r = await openRepository(new LocalBackend(repo), { passphrase: PASS });
  const hostile: string[] = [];
  try {
    const times = { mtime: '1732590000000000000', atime: '1732590000000000000', ctime: '1732590000000000000' };
    const base = { mode: 0o755, uid: 0, gid: 0, ...times, inode: 1, links: 1, size: 0 };
    const file = (name: string): TreeEntry => ({ name, type: 'file', ...base, mode: 0o644, content: [] });
    const inner = await putFileTree(r, [file('escaped')]);
    for (const name of ['..', 'a/b', 'nul\u0000name']) {
      // A directory of that name holding a file, and beside it a plain file of that name in another tree.
      const root = await putFileTree(r, [{ name, type: 'directory', ...base, tree: inner.id }]);
      const snapshot = await saveSnapshot(r, {
        version: 2, vm: 'hostile', time: new Date().toISOString(), hostname: 'attacker', tags: [], parent: null, definition: null, disks: [],
        stats: { bytesLogical: 0, bytesRead: 0, bytesNew: 0, bytesStored: 0, durationMs: 0 },
        files: { tree: root.id, paths: ['/'], entries: 2, warnings: [] },
      });
      hostile.push(snapshot.id);
    }
  } finally {
    await r.close();
  }
  const arena = join(work, 'arena');
  await fs.mkdir(arena);
  for (const [i, id] of hostile.entries()) {
    const target = join(arena, `target${i}`, 'inner');
    const result = await coffer(['restore', '-r', repo, id, '--to', target], opts);
    assertExit(result, 11);
    assert.match(assertOneLineError(result), /unsafe name/);
  }
  // Nothing escaped: no `escaped` anywhere in the arena, nor beside it.
  assert.equal((await sh('find . -name escaped', arena)).trim(), '');
  assert.equal((await sh('find . -maxdepth 1 -name escaped', work)).trim(), '');
  // `files ls` refuses the same trees.
  const ls = await coffer(['files', '-r', repo, hostile[0] as string, 'ls', '/'], opts);
  assertExit(ls, 11);
  assert.match(assertOneLineError(ls), /unsafe name/);
});

test('a path named inside another named path that does not exist is a warning (exit 18), as a missing top-level path is', async () => {
  const missing = join(src, 'deep', 'no-such-file');
  const result = await coffer(['backup', '-r', repo, '--files', src, join(src, 'keep.txt'), missing, '--host', 'nested-paths'], opts);
  assertExit(result, 18);
  assert.match(result.stderr.toString(), new RegExp(`warning: ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: vanished`));
  assert.doesNotMatch(result.stderr.toString(), /keep\.txt/, 'a nested path that exists is backed up with its folder, unremarked');
});

test('a file backup none of whose paths exists is refused (exit 3) and saves no snapshot: an empty one would count as a backup for retention', async () => {
  const gone = [join(work, 'not-mounted'), join(work, 'typo')];
  const before = await cofferJson<unknown[]>(['snapshots', '-r', repo, '--json'], opts);
  const result = await coffer(['backup', '-r', repo, '--files', ...gone, '--host', 'nothing-there'], opts);
  assertExit(result, 3);
  assert.match(assertOneLineError(result), /none of .*not-mounted, .*typo exists: nothing to back up, no snapshot saved/);
  assert.equal((await cofferJson<unknown[]>(['snapshots', '-r', repo, '--json'], opts)).length, before.length, 'no snapshot saved');
  // One path that exists among missing ones: backed up, the missing one a warning (above).
  const one = await coffer(['backup', '-r', repo, '--files', join(work, 'typo'), join(src, 'keep.txt'), '--host', 'nothing-there'], opts);
  assertExit(one, 18);
});
