import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeDiskTempDir, runTool } from '../testing/index.js';
import { noDirectWritesIn } from './direct-dir.test-support.js';
import { openRawTarget, takeRun } from './raw-target.js';

let dir: { path: string; remove(): Promise<void> };
/** Why direct writes cannot happen here, if they cannot. */
let noDirect: string | false = false;
before(async () => {
  dir = await makeDiskTempDir('raw-target');
  noDirect = await noDirectWritesIn(dir.path);
});
after(() => dir?.remove());

const write = (offset: number, length: number) => ({ offset, data: new Uint8Array(length) });

test('takeRun: the lowest offset and what continues it without a gap; the rest stays queued', () => {
  const queued = [write(8, 4), write(0, 4), write(20, 4), write(4, 4), write(12, 4)];
  assert.deepEqual(takeRun(queued).map((w) => w.offset), [0, 4, 8, 12]);
  assert.deepEqual(queued.map((w) => w.offset), [20]);
  assert.deepEqual(takeRun(queued).map((w) => w.offset), [20]);
  assert.equal(queued.length, 0);
});

test('takeRun: a run stops at 16 MiB and at 1024 buffers', () => {
  const big = Array.from({ length: 6 }, (_, i) => write(i * 4 * 1024 * 1024, 4 * 1024 * 1024));
  assert.equal(takeRun(big).length, 4);
  const many = Array.from({ length: 1500 }, (_, i) => write(i * 512, 512));
  assert.equal(takeRun(many).length, 1024);
  assert.equal(many.length, 476);
});

for (const direct of [true, false]) {
  test(`writes issued all at once, out of order, with gaps and a short last block, land where they belong (${direct ? 'direct, past the page cache' : 'through the page cache'})`, async (t) => {
    const blockSize = 64 * 1024;
    const blocks = 48;
    const size = blocks * blockSize - 1000; // the last block is not a whole number of sectors: it goes through the page cache
    const path = join(dir.path, `restored-${direct}.raw`);
    const target = await openRawTarget(path, size, { overwrite: false, direct });
    const expected = Buffer.alloc(size);
    const order = Array.from({ length: blocks }, (_, i) => i).filter((i) => i % 7 !== 3); // every 7th block a hole
    order.sort(() => Math.random() - 0.5);
    await Promise.all(order.map((block) => {
      // Views into shared memory, as a restore hands them over.
      const data = new Uint8Array(new SharedArrayBuffer(Math.min(blockSize, size - block * blockSize)));
      data.set(randomBytes(data.length));
      expected.set(data, block * blockSize);
      return target.write(block * blockSize, data);
    }));
    await target.finish();
    // fincore (util-linux) counts the file's pages in the page cache: direct writes leave none but the last block's.
    const cached = Number((await runTool('fincore', ['--bytes', '--noheadings', '--output', 'RES', path])).trim());
    if (direct && noDirect) t.diagnostic(`${noDirect}: written through the page cache`);
    else if (direct) assert.ok(cached <= blockSize, `${cached} bytes of the restored file in the page cache`);
    else assert.ok(cached >= (order.length - 1) * blockSize, `${cached} bytes of the restored file in the page cache`);
    assert.ok((await readFile(path)).equals(expected));
  });
}

test('standard output: writes that find the stream full share one wait (no listener pile-up), and a stream error fails every waiting write', async () => {
  const { Writable } = await import('node:stream');
  const received: Buffer[] = [];
  let release: (() => void) | undefined;
  const slow = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, callback) {
      received.push(chunk);
      release = () => callback();
    },
  });
  const target = await openRawTarget('-', 64 * 1024, { overwrite: false, stdout: slow });
  const writes = Array.from({ length: 32 }, (_, i) => target.write(i * 2048, Buffer.alloc(2048, i)));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(slow.listenerCount('drain'), 1, 'one drain listener for 32 waiting writes');
  assert.ok(slow.listenerCount('error') <= 2, `error listeners: ${slow.listenerCount('error')}`);
  while (received.length < 32) {
    release?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  release?.();
  await Promise.all(writes);
  assert.deepEqual(received.map((b) => b[0]), Array.from({ length: 32 }, (_, i) => i));
  assert.equal(slow.listenerCount('drain'), 0);

  const failing = new Writable({ highWaterMark: 1024, write: (_chunk, _encoding, callback) => setImmediate(() => callback(Object.assign(new Error('no space'), { code: 'ENOSPC' }))) });
  failing.on('error', () => {}); // the stream's own error event, as process.stdout's handler in main.ts
  const full = await openRawTarget('-', 64 * 1024, { overwrite: false, stdout: failing });
  const results = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => full.write(i * 2048, Buffer.alloc(2048))));
  const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.ok(rejected.length >= 15, `${rejected.length} of 16 writes failed`);
  for (const r of rejected) assert.match(String(r.reason), /no space left writing standard output/);
});
