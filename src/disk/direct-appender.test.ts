import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, ftruncateSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { syscalls } from '../native/index.js';
import { makeDiskTempDir, runTool } from '../testing/index.js';
import { DirectAppender } from './direct-appender.js';
import { AlignedBuffers, DIRECT_ALIGNMENT } from './direct-writes.js';
import { noDirectWritesIn } from './direct-dir.test-support.js';

const KiB = 1024;
let dir: { path: string; remove(): Promise<void> };
/** Why the tests that need O_DIRECT cannot run here, if they cannot. */
let noDirect: string | false = false;
before(async () => {
  dir = await makeDiskTempDir('direct-appender');
  noDirect = await noDirectWritesIn(dir.path);
});
after(() => dir?.remove());

/** Writes `pieces` ([length, 'data' | 'hole']) through an appender with 64 KiB buffers; returns the expected content and the bytes left in the page cache. */
async function appendPieces(name: string, pieces: [number, 'data' | 'hole'][]): Promise<{ expected: Buffer; path: string; cached: number }> {
  const path = join(dir.path, name);
  const size = pieces.reduce((n, [length]) => n + length, 0);
  const expected = Buffer.alloc(size);
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
  const buffers = new AlignedBuffers(64 * KiB);
  try {
    const appender = DirectAppender.open(path, fd, buffers);
    assert.ok(appender !== undefined);
    try {
      let offset = 0;
      for (const [length, kind] of pieces) {
        if (kind === 'data') {
          const data = randomBytes(length);
          data.copy(expected, offset);
          await appender.write(data, offset);
        }
        offset += length;
      }
      await appender.finish();
    } finally {
      await appender.close();
    }
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
  const cached = Number((await runTool('fincore', ['--bytes', '--noheadings', '--output', 'RES', path])).trim());
  return { expected, path, cached };
}

test('pieces of any length land byte for byte, the whole sectors past the page cache', async (t) => {
  if (noDirect) return t.skip(noDirect);
  // Content-defined chunk sizes: none a whole number of sectors; together 100 times the buffer and more.
  const pieces: [number, 'data'][] = Array.from({ length: 300 }, (_, i) => [17 * KiB + ((i * 7919) % 40_000) + 1, 'data']);
  const { expected, path, cached } = await appendPieces('pieces.bin', pieces);
  assert.ok((await readFile(path)).equals(expected));
  assert.ok(cached <= 2 * DIRECT_ALIGNMENT, `${cached} bytes in the page cache (only the last partial sector's page may be)`);
});

test('holes: after one that ends on a sector the writes go on direct; after one that does not, through the page cache', async (t) => {
  if (noDirect) return t.skip(noDirect);
  const aligned = await appendPieces('aligned-hole.bin', [[300 * KiB, 'data'], [1024 * KiB - 300 * KiB, 'hole'], [512 * KiB, 'data'], [256 * KiB, 'hole'], [640 * KiB + 100, 'data']]);
  assert.ok((await readFile(aligned.path)).equals(aligned.expected));
  assert.ok(aligned.cached <= 2 * DIRECT_ALIGNMENT, `${aligned.cached} bytes cached`);
  const unaligned = await appendPieces('unaligned-hole.bin', [[100 * KiB + 5, 'data'], [3000, 'hole'], [512 * KiB, 'data']]);
  assert.ok((await readFile(unaligned.path)).equals(unaligned.expected));
  assert.ok(unaligned.cached >= 512 * KiB, `${unaligned.cached} bytes cached: what follows the unaligned hole went through the page cache`);
});

test('aligned buffers start on a sector boundary in memory and are reused', () => {
  const buffers = new AlignedBuffers(64 * KiB);
  const first = buffers.acquire();
  assert.equal(first.length, 64 * KiB);
  assert.equal(syscalls.alignmentGap(first, DIRECT_ALIGNMENT), 0);
  buffers.release(first);
  assert.equal(buffers.acquire(), first);
  assert.throws(() => new AlignedBuffers(1000), /whole sectors/);
});
