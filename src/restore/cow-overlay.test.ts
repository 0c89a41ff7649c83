import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { BlockDevice, Extent } from '../blockdev/index.js';
import { isCofferError } from '../errors/index.js';
import { CowOverlay, GRANULE } from './index.js';

/** A read-only device over bytes, with a zero extent where the bytes are zero in 64 KiB units. */
function baseOver(bytes: Uint8Array): BlockDevice & { writes: number } {
  return {
    size: bytes.length,
    writes: 0,
    read: async (offset, length, into) => {
      const out = into?.subarray(0, length) ?? new Uint8Array(length);
      out.set(bytes.subarray(offset, offset + length));
      return out;
    },
    async *extents(offset = 0, length = bytes.length - offset): AsyncIterable<Extent> {
      for (let at = offset; at < offset + length; ) {
        const unit = Math.min(offset + length, (Math.floor(at / 65536) + 1) * 65536) - at;
        const zero = bytes.subarray(at, at + unit).every((b) => b === 0);
        yield { offset: at, length: unit, kind: zero ? 'zero' : 'data' };
        at += unit;
      }
    },
    close: async () => {},
  };
}

const ORIGIN = { snapshot: 'a'.repeat(64), vm: 'web01', disk: 'disk0' };

test('writes land in the overlay, reads mix overlay and base, the base is never written', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-cow-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const original = randomBytes(1 << 20);
  original.fill(0, 512 * 1024); // the second half reads as zeros
  const baseBytes = Buffer.from(original);
  const model = Buffer.from(original);
  const overlay = await CowOverlay.open(baseOver(baseBytes), dir, 'disk0', ORIGIN);
  const writes: [number, Buffer][] = [[100, randomBytes(10)], [GRANULE * 3 - 5, randomBytes(GRANULE + 10)], [700 * 1024, randomBytes(3 * GRANULE)], [(1 << 20) - 7, randomBytes(7)]];
  for (const [at, data] of writes) {
    await overlay.write(at, data);
    data.copy(model, at);
  }
  await overlay.writeZeroes(50_000, 20_000);
  model.fill(0, 50_000, 70_000);
  assert.ok(Buffer.from(await overlay.read(0, 1 << 20)).equals(model));
  assert.ok(Buffer.from(await overlay.read(GRANULE * 3 - 100, 300)).equals(model.subarray(GRANULE * 3 - 100, GRANULE * 3 + 200)));
  assert.ok(baseBytes.equals(original), 'the base is untouched');
  const map: Extent[] = [];
  for await (const e of overlay.extents()) map.push(e);
  assert.ok(map.some((e) => e.kind === 'data' && e.offset <= 700 * 1024 && e.offset + e.length >= 700 * 1024 + 3 * GRANULE), 'written granules are data');
  assert.ok(map.some((e) => e.kind === 'zero' && e.offset >= 512 * 1024), 'untouched zero ranges stay zero');
  await overlay.close();

  const reopened = await CowOverlay.open(baseOver(baseBytes), dir, 'disk0', ORIGIN);
  assert.ok(Buffer.from(await reopened.read(0, 1 << 20)).equals(model), 'a flushed overlay reopens as it was');
  await reopened.close();
});

test('an overlay reopens only over the snapshot disk it was made over, and one process at a time', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-cow-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const base = baseOver(randomBytes(1 << 20));
  const first = await CowOverlay.open(base, dir, 'disk0', ORIGIN);
  await first.write(0, Buffer.alloc(GRANULE, 7));
  const record = JSON.parse(await fs.readFile(path.join(dir, 'disk0.origin.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(record, { format: 'coffer-cow-overlay', version: 1, ...ORIGIN, size: 1 << 20, granule: GRANULE });
  // A second writer while the first has it open: refused, the first's lock stays.
  await assert.rejects(CowOverlay.open(base, dir, 'disk0', ORIGIN), (e: unknown) => isCofferError(e, 'E_TARGET_UNWRITABLE') && /in use by process \d+/.test((e as Error).message));
  await first.close();
  await assert.rejects(fs.stat(path.join(dir, 'disk0.lock')), /ENOENT/);

  // Another snapshot, or another disk of the same one: refused, the overlay untouched.
  const mapBefore = await fs.readFile(path.join(dir, 'disk0.map'));
  for (const other of [{ ...ORIGIN, snapshot: 'b'.repeat(64) }, { ...ORIGIN, disk: 'disk1' }]) {
    await assert.rejects(CowOverlay.open(base, dir, 'disk0', other), (e: unknown) => isCofferError(e, 'E_TARGET_UNWRITABLE') && /was made over disk disk0 of snapshot aaaaaaaa \(web01\)/.test((e as Error).message));
  }
  assert.ok((await fs.readFile(path.join(dir, 'disk0.map'))).equals(mapBefore));
  await assert.rejects(fs.stat(path.join(dir, 'disk0.lock')), /ENOENT/, 'a refused open leaves no lock');

  // A lock left by a process that is gone (a killed coffer serve) is taken over.
  await fs.writeFile(path.join(dir, 'disk0.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname() }));
  const again = await CowOverlay.open(base, dir, 'disk0', ORIGIN);
  assert.equal((await again.read(0, 1))[0], 7, 'the kept overlay is the same one');
  await again.close();

  // An overlay made before origins were recorded cannot be vouched for.
  await fs.rm(path.join(dir, 'disk0.origin.json'));
  await assert.rejects(CowOverlay.open(base, dir, 'disk0', ORIGIN), (e: unknown) => isCofferError(e, 'E_TARGET_UNWRITABLE') && /without a record of the snapshot/.test((e as Error).message));
});

test('a stale overlay lock is taken over by one process only, and a lock naming our own pid that we do not hold is stale', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-cow-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const base = baseOver(randomBytes(1 << 20));
  // A restarted container: the dead holder had the pid this process has now.
  await fs.writeFile(path.join(dir, 'disk0.lock'), JSON.stringify({ pid: process.pid, host: os.hostname() }));
  const reused = await CowOverlay.open(base, dir, 'disk0', ORIGIN);
  await reused.close();
  // Two takers of one stale lock at once: one gets it, the other is refused, the winner's lock stays.
  for (let round = 0; round < 5; round++) {
    await fs.writeFile(path.join(dir, 'disk0.lock'), JSON.stringify({ pid: 2 ** 22 + 777, host: os.hostname() }));
    const outcomes = await Promise.allSettled([CowOverlay.open(base, dir, 'disk0', ORIGIN), CowOverlay.open(base, dir, 'disk0', ORIGIN)]);
    const opened = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    assert.equal(opened.length, 1, `round ${round}: exactly one taker gets the overlay`);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    assert.ok(isCofferError(refused.reason, 'E_TARGET_UNWRITABLE'), String(refused.reason));
    assert.equal(JSON.parse(await fs.readFile(path.join(dir, 'disk0.lock'), 'utf8')).pid, process.pid, 'the winner holds the lock');
    await opened[0]?.close();
    assert.deepEqual((await fs.readdir(dir)).filter((f) => f.includes('.stale-')), [], 'nothing moved aside is left');
  }
});
