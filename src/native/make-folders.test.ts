/**
 * makeFolders: `mkdir -p` that answers where Node's recursive mkdir never returns (/proc/sys),
 * and says what stands in the way.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeFolders, makeFoldersSync } from './make-folders.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'coffer-make-folders-'));
});
after(() => rm(work, { recursive: true, force: true }));

const code = (expected: string) => (error: unknown) => (error as NodeJS.ErrnoException).code === expected;

for (const [name, make] of [['makeFolders', makeFolders], ['makeFoldersSync', async (path: string, mode?: number) => makeFoldersSync(path, mode)]] as const) {
  test(`${name}: makes the missing folders with the mode, twice and at once is fine`, async () => {
    const deep = join(work, name, 'a', 'b', 'c');
    await Promise.all([make(deep, 0o700), make(deep, 0o700)]);
    await make(deep);
    assert.ok((await stat(deep)).isDirectory());
    assert.equal((await stat(join(work, name, 'a'))).mode & 0o777, 0o700);
  });

  test(`${name}: a file on the way is ENOTDIR, a dangling symbolic link ENOENT`, async () => {
    await writeFile(join(work, `${name}-file`), 'x');
    await assert.rejects(make(join(work, `${name}-file`, 'below')), code('ENOTDIR'));
    await assert.rejects(make(join(work, `${name}-file`)), code('ENOTDIR'));
    await symlink(join(work, 'nowhere'), join(work, `${name}-dangling`));
    await assert.rejects(make(join(work, `${name}-dangling`)), code('ENOENT'));
  });

  test(`${name}: where mkdir answers ENOENT under a folder that exists (/proc/sys), the refusal comes back`, async () => {
    await assert.rejects(make('/proc/sys/coffer-cannot-be-made/below'), code('ENOENT'));
  });
}
