import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { alignedSharedBuffer, takesDirectWrites } from '../../native/index.js';
import { mountSmallExt4, seededBytes, type SmallExt4 } from '../../testing/index.js';
import { LocalBackend } from './local-backend.js';

/**
 * Packs written past the page cache (O_DIRECT) onto a real ext4 filesystem that fills up: a
 * 16 MiB image made by mke2fs, mounted through a loop device. The write that finds no room
 * fails as E_NO_SPACE at once (not at a later flush), leaves no temporary file, and the
 * objects written before read back whole.
 */
const MiB = 1024 * 1024;

let fs: SmallExt4 | undefined;
let mountPoint: string | undefined;

before(async () => {
  fs = await mountSmallExt4('local-backend-full', 16 * MiB);
  mountPoint = fs.mountPoint;
});

after(async () => {
  await fs?.remove();
});

test('packs written direct to a filling ext4: the one without room fails as E_NO_SPACE and leaves nothing; the others read back whole', async () => {
  const root = mountPoint as string;
  assert.ok(await takesDirectWrites(root), 'an ext4 mount takes direct writes');
  const backend = new LocalBackend(root);
  const written: { key: string; data: Buffer }[] = [];
  let failure: unknown;
  for (let i = 0; i < 8 && failure === undefined; i++) {
    const data = alignedSharedBuffer(3 * MiB + 517);
    seededBytes(40 + i, data.length).copy(data);
    const key = `packs/0${i}/pack${i}`;
    try {
      await backend.put(key, data);
      written.push({ key, data });
    } catch (error) {
      failure = error;
    }
  }
  assert.ok(failure !== undefined, 'a 16 MiB filesystem cannot take 8 packs of 3 MiB');
  assert.ok(isCofferError(failure, 'E_NO_SPACE'), `failed with ${String(failure)}`);
  assert.ok(written.length >= 2, `${written.length} packs fit`);
  for (const { key, data } of written) assert.ok((await readFile(join(root, key))).equals(data), `${key} reads back whole`);
  const leftovers: string[] = [];
  for (const entry of await readdir(join(root, 'packs'), { recursive: true })) if (String(entry).includes('.tmp-')) leftovers.push(String(entry));
  assert.deepEqual(leftovers, [], 'no temporary file is left');
});
