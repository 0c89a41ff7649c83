/**
 * The directory tree the file-backup tests share (file-backup.integ.test.ts,
 * file-options.integ.test.ts, file-offsite.integ.test.ts), and how they compare a restored
 * tree with it: a copy of /usr/share/doc/bash (and coreutils), a large random file, a sparse
 * file, hard links, symlinks (one dangling), a FIFO, unicode and tab names, xattrs, ACLs, a
 * setgid directory, a foreign owner and a symlink with nanosecond times. Built with the
 * real tools (cp, dd, setfattr, setfacl, touch), a second or so; never imported by the product.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runTool } from './cli-harness.js';

const exec = promisify(execFile);

/** Runs a shell script in `cwd` (environment added to this process's), answering its stdout. */
export async function sh(script: string, cwd: string, env: Record<string, string> = {}): Promise<string> {
  return (await exec('/bin/sh', ['-c', script], { cwd, maxBuffer: 64 << 20, env: { ...process.env, ...env } })).stdout;
}

/**
 * Builds the test tree at `src` (which must not exist); `bigBytes`: the random file's size.
 * Needs setfattr, getfattr, setfacl, getfacl (the caller checks with requireTools).
 */
export async function makeFileTestTree(src: string, bigBytes = 20_000_000): Promise<void> {
  await fs.mkdir(join(src, 'sub'), { recursive: true });
  await sh(
    `cp -a /usr/share/doc/bash /usr/share/doc/coreutils '${src}/' 2>/dev/null || cp -a /usr/share/doc/bash '${src}/'
    head -c ${bigBytes} /dev/urandom > '${src}/big'
    truncate -s 50M '${src}/sparse' && printf x | dd of='${src}/sparse' bs=1 seek=10000000 conv=notrunc 2>/dev/null
    echo hello > '${src}/a'; ln '${src}/a' '${src}/sub/a-link'; ln -s ../a '${src}/sub/sym'; ln -s /nonexistent '${src}/dangling'
    mkfifo '${src}/fifo'; echo unicode > '${src}/ünï cødé ✓'; echo tab > "${src}/tab	name"
    setfattr -n user.colour -v blue '${src}/a'; setfattr -n user.bin -v 0x00ff10 '${src}/big'
    setfacl -m u:nobody:r '${src}/a'; setfacl -d -m u:nobody:rx '${src}/sub'
    chmod 4750 '${src}/sub/sym' 2>/dev/null; chmod 2755 '${src}/sub'; chown 65534:65534 '${src}/big'
    touch -h -d '2001-02-03 04:05:06.123456789' '${src}/sub/sym'`,
    src,
  );
}

/** What `stat`, `getfattr` and `getfacl` say of every entry, relative to `dir`. */
export async function describeTree(dir: string): Promise<{ stat: string; xattrs: string; acls: string }> {
  return {
    // mode, owner, size, mtime with nanoseconds, links; directories' sizes depend on the filesystem's history
    stat: await sh(`find . ! -name . -exec stat -c '%n %f %u %g %y %h' {} + | sort; find . -type f -exec stat -c '%n %s' {} + | sort`, dir),
    xattrs: await sh('getfattr -R -h -d -m - . 2>/dev/null | sort', dir),
    acls: await sh('getfacl -R -P . 2>/dev/null', dir),
  };
}

/** Asserts `restored` has the content and metadata of `source` (diff -r, stat, getfattr, getfacl; the sparse file still sparse). */
export async function assertRestoredSame(source: string, restored: string): Promise<void> {
  const diff = await runTool('diff', ['-r', '--no-dereference', '-x', 'fifo', source, restored]);
  assert.equal(diff.code, 0, diff.stdout + diff.stderr);
  const [a, b] = await Promise.all([describeTree(source), describeTree(restored)]);
  assert.equal(b.stat, a.stat);
  assert.equal(b.xattrs, a.xattrs);
  assert.equal(b.acls, a.acls);
  const du = await sh(`du -k '${source}/sparse' '${restored}/sparse' | cut -f1`, source);
  const [before, afterDu] = du.trim().split('\n').map(Number);
  assert.ok((afterDu as number) <= (before as number) + 8, `sparse file restored with ${afterDu} KiB allocated (source ${before})`);
}
