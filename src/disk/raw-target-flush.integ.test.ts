import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CofferError } from '../errors/index.js';
import { makeTempDir, requireTools, runTool } from '../testing/index.js';
import { openRawTarget } from './raw-target.js';

/**
 * The restore target against a real failing disk: a loop device whose backing file lives on a
 * 1 MiB tmpfs. Through the page cache (`direct: false`, what a filesystem without O_DIRECT
 * gets), writes to the device land in the page cache and succeed; writing them back overflows
 * the tmpfs, so the kernel's fdatasync fails with EIO — and, as Linux reports a write-back
 * error once per open file, a second fdatasync succeeds: the background flush must keep it.
 * Direct writes (the default) fail at the write itself or, when it was under way in the
 * background (direct-writes.ts), at the next.
 */
const MiB = 1024 * 1024;
const DEVICE_BYTES = 16 * MiB;

let dir: { path: string; remove(): Promise<void> };
let mounted = false;
let loopDevice: string | undefined;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

before(async () => {
  await requireTools('losetup', 'mount');
  process.on('unhandledRejection', onUnhandled);
  dir = await makeTempDir('raw-target-flush');
  await runTool('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir.path]);
  mounted = true;
  await writeFile(join(dir.path, 'backing'), '');
  await truncate(join(dir.path, 'backing'), DEVICE_BYTES);
  loopDevice = (await runTool('losetup', ['--find', '--show', join(dir.path, 'backing')])).trim();
});

after(async () => {
  process.off('unhandledRejection', onUnhandled);
  if (loopDevice !== undefined) await runTool('losetup', ['--detach', loopDevice]).catch(() => undefined);
  if (mounted) await runTool('umount', [dir.path]).catch(() => undefined);
  await dir?.remove();
});

/** Writes the whole device, 1 MiB at a time, awaiting each; returns the writes' outcomes. */
async function fillDevice(target: Awaited<ReturnType<typeof openRawTarget>>): Promise<PromiseSettledResult<void>[]> {
  const outcomes: PromiseSettledResult<void>[] = [];
  for (let offset = 0; offset < DEVICE_BYTES; offset += MiB) {
    outcomes.push(...(await Promise.allSettled([target.write(offset, randomBytes(MiB))])));
  }
  return outcomes;
}

test('a background flush that fails is reported by finish as a CofferError, though a later fdatasync succeeds', async () => {
  const device = loopDevice as string;
  // The flush starts after the last write: everything overflowing is written back by it alone.
  const target = await openRawTarget(device, DEVICE_BYTES, { overwrite: true, flushEveryBytes: DEVICE_BYTES, direct: false });
  const outcomes = await fillDevice(target);
  assert.deepEqual(outcomes.map((o) => o.status), outcomes.map(() => 'fulfilled'));
  await assert.rejects(target.finish(), (error: unknown) => {
    assert.ok(error instanceof CofferError);
    assert.equal(error.code, 'E_TARGET_UNWRITABLE');
    assert.match(error.message, new RegExp(`^cannot write ${device}: .*EIO`));
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
  assert.deepEqual(unhandled, []);
});

test('abort waits for a failing background flush and throws nothing', async () => {
  const device = loopDevice as string;
  const target = await openRawTarget(device, DEVICE_BYTES, { overwrite: true, flushEveryBytes: DEVICE_BYTES, direct: false });
  const outcomes = await fillDevice(target);
  assert.deepEqual(outcomes.map((o) => o.status), outcomes.map(() => 'fulfilled'));
  await target.abort(); // the flush started by the last write is still under way
  await new Promise((resolve) => setImmediate(resolve)); // an unhandled rejection would be reported by now
  assert.deepEqual(unhandled, []);
});

test('direct writes to a failing disk fail the restore at a write (the failing one, or the next while it was under way), as a CofferError naming the device; abort then closes quietly', async () => {
  const device = loopDevice as string;
  const target = await openRawTarget(device, DEVICE_BYTES, { overwrite: true });
  const outcomes = await fillDevice(target);
  assert.equal(outcomes[0]?.status, 'fulfilled', 'the first MiB fits the tmpfs');
  const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
  assert.ok(failed.length > 0, 'a write past what the tmpfs holds fails');
  for (const { reason } of failed) {
    assert.ok(reason instanceof CofferError);
    assert.ok(['E_TARGET_UNWRITABLE', 'E_NO_SPACE'].includes(reason.code), reason.code);
    assert.match(reason.message, new RegExp(device));
  }
  await target.abort();
  assert.deepEqual(unhandled, []);
});

test('a restore to a regular file with background flushes is complete once finish resolves', async () => {
  const tmp = await makeTempDir('raw-target-flush-file');
  try {
    const file = join(tmp.path, 'restored.raw');
    const target = await openRawTarget(file, 8 * MiB, { overwrite: false, flushEveryBytes: MiB });
    const expected = randomBytes(8 * MiB);
    // Issued all at once, out of order: flushes start while other writes are queued.
    const blocks = Array.from({ length: 32 }, (_, i) => i).reverse();
    await Promise.all(blocks.map((i) => target.write(i * 256 * 1024, expected.subarray(i * 256 * 1024, (i + 1) * 256 * 1024))));
    await target.finish();
    assert.ok((await readFile(file)).equals(expected));
    assert.equal((await stat(file)).size, 8 * MiB);
  } finally {
    await tmp.remove();
  }
  assert.deepEqual(unhandled, []);
});
