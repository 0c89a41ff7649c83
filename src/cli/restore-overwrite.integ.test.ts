/**
 * `restore --overwrite` never destroys the old image before the new one is whole: the new
 * image is written beside it and renamed over it at the end (src/disk/target-file.ts). A
 * restore that fails (here: the disk fills up) leaves the old image as it was and nothing
 * beside it; one that succeeds keeps the old file's owner, permissions and the symbolic link
 * that named it. Raw (raw-target.ts) and an image format (qcow2, output-file.ts). Real ext4
 * through a loop device for the full disk (root, as CI runs).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { mountSmallExt4, seededBytes, type SmallExt4 } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'overwrite' };
const opts = { env, timeoutMs: 180_000 };
const MiB = 1 << 20;
let disk: SmallExt4;
let work: string;
let repo: string;
let snapshot: string;
let image: string;

before(async () => {
  disk = await mountSmallExt4('restore-overwrite', 64 * MiB);
  work = await makeWorkDir('restore-overwrite');
  repo = join(work, 'repo');
  image = join(work, 'disk.raw');
  await fs.writeFile(image, seededBytes(1, 40 * MiB));
  assertExit(await coffer(['init', '-r', repo], opts), 0);
  snapshot = (await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm', image], opts)).id;
});
after(async () => {
  await disk.remove();
  await removeDir(work);
});

/** An old image of 40 MiB owned by 1234:5678, mode 0640, named through a symbolic link. */
async function oldImage(dir: string, name: string): Promise<{ link: string; file: string; bytes: Buffer }> {
  const file = join(dir, name);
  const bytes = seededBytes(2, 40 * MiB);
  await fs.writeFile(file, bytes);
  await fs.chown(file, 1234, 5678);
  await fs.chmod(file, 0o640);
  const link = join(dir, `link-to-${name}`);
  await fs.symlink(file, link);
  return { link, file, bytes };
}

/** Names in `dir` the restore left besides `keep`. */
async function leftovers(dir: string, keep: string[]): Promise<string[]> {
  return (await fs.readdir(dir)).filter((name) => !keep.includes(name) && name !== 'lost+found');
}

for (const format of ['raw', 'qcow2'] as const) {
  test(`${format}: --overwrite on a disk without room for both images fails with exit 5 and leaves the old image as it was`, async () => {
    const old = await oldImage(disk.mountPoint, `old.${format}`);
    try {
      const failed = await coffer(['restore', '-r', repo, snapshot, '--to', old.link, '--format', format, '--overwrite'], opts);
      assertExit(failed, 5);
      assert.match(assertOneLineError(failed), /no space left writing .*link-to-old.*both must fit; the old image is untouched/);
      assert.ok((await fs.readFile(old.file)).equals(old.bytes), 'the old image is whole');
      assert.deepEqual(await leftovers(disk.mountPoint, [`old.${format}`, `link-to-old.${format}`]), [], 'nothing left beside it');
      assert.ok((await fs.lstat(old.link)).isSymbolicLink());
    } finally {
      await fs.rm(old.file);
      await fs.rm(old.link);
    }
  });

  test(`${format}: --overwrite with room replaces the old image through its link, keeping its owner and permissions`, async () => {
    const dir = join(work, `replace-${format}`);
    await fs.mkdir(dir);
    const old = await oldImage(dir, `old.${format}`);
    const restored = await coffer(['restore', '-r', repo, snapshot, '--to', old.link, '--format', format, '--overwrite'], opts);
    assertExit(restored, 0);
    const stats = await fs.stat(old.file);
    assert.deepEqual([stats.uid, stats.gid, stats.mode & 0o7777], [1234, 5678, 0o640], 'owner and permissions kept');
    assert.ok((await fs.lstat(old.link)).isSymbolicLink(), 'the link is still a link');
    assert.deepEqual(await leftovers(dir, [`old.${format}`, `link-to-old.${format}`]), []);
    // The independent reader: qemu-img compares the guest bytes of either format with the source.
    execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', format, image, old.file]);
  });
}
