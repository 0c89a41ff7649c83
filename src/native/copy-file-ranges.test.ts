/**
 * copyFileRanges: ranges of several files land at their offsets, 4 KiB pieces of zeros are
 * left unwritten only when asked (aligned in the output, whatever the input's alignment), a
 * direct descriptor takes the aligned runs, and every failure says which side failed, where,
 * and for which range, without a crash.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { copyFileRanges, type CopyRangesError } from './copy-file-ranges.js';

const KiB = 1024;
const MiB = 1024 * KiB;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coffer-copy-ranges-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** Bytes with 4 KiB pieces of zeros at `zeroPieces` (indexes of 4 KiB pieces). */
function bytesWithZeros(length: number, zeroPieces: readonly number[]): Buffer {
  const bytes = randomBytes(length);
  for (const piece of zeroPieces) bytes.fill(0, piece * 4 * KiB, Math.min(length, (piece + 1) * 4 * KiB));
  return bytes;
}

test('ranges of two files land at their offsets in the output, in any order, across the 2 MiB buffer', async () => {
  const a = bytesWithZeros(5 * MiB + 123, []);
  const b = randomBytes(300 * KiB);
  await writeFile(join(dir, 'a'), a);
  await writeFile(join(dir, 'b'), b);
  const inA = await open(join(dir, 'a'), 'r');
  const inB = await open(join(dir, 'b'), 'r');
  const out = await open(join(dir, 'out1'), 'w+');
  try {
    await out.truncate(8 * MiB);
    const copied = await copyFileRanges(
      [
        { fd: inB.fd, at: 1000, offset: 7 * MiB + 17, length: 200 * KiB },
        { fd: inA.fd, at: 77, offset: 4096, length: 5 * MiB },
        { fd: inB.fd, at: 0, offset: 0, length: 1 },
      ],
      out.fd,
      { skipZeros: false },
    );
    assert.deepEqual(copied, { written: 200 * KiB + 5 * MiB + 1, direct: 0, refused: false });
  } finally {
    await Promise.all([inA.close(), inB.close(), out.close()]);
  }
  const expected = Buffer.alloc(8 * MiB);
  b.copy(expected, 7 * MiB + 17, 1000, 1000 + 200 * KiB);
  a.copy(expected, 4096, 77, 77 + 5 * MiB);
  b.copy(expected, 0, 0, 1);
  assert.ok((await readFile(join(dir, 'out1'))).equals(expected));
});

test('with skipZeros, 4 KiB pieces of zeros aligned in the output stay holes; without, every byte is written', async () => {
  // Input pieces 1, 2 and 9 are zeros; copied to output offset 8 KiB (aligned) they are output
  // pieces 3, 4 and 11. A zero run that straddles output pieces is written (not a whole page).
  const source = bytesWithZeros(16 * 4 * KiB, [1, 2, 9]);
  await writeFile(join(dir, 'zeros-in'), source);
  const input = await open(join(dir, 'zeros-in'), 'r');
  try {
    for (const skipZeros of [true, false]) {
      const path = join(dir, `zeros-out-${skipZeros}`);
      const out = await open(path, 'w+');
      await out.truncate(MiB);
      const copied = await copyFileRanges([{ fd: input.fd, at: 0, offset: 8 * KiB, length: source.length }], out.fd, { skipZeros });
      await out.close();
      assert.equal(copied.written, skipZeros ? source.length - 3 * 4 * KiB : source.length);
      const written = await readFile(path);
      assert.ok(written.subarray(8 * KiB, 8 * KiB + source.length).equals(source), 'the bytes read back are the source, zeros included');
      const blocks = (await stat(path)).blocks * 512;
      if (skipZeros) assert.ok(blocks <= source.length - 3 * 4 * KiB, `${blocks} bytes allocated: the zero pieces are holes`);
      else assert.ok(blocks >= source.length, `${blocks} bytes allocated: every piece written`);
    }
    // Unaligned in the output (offset 1000): a zero input piece spans two output pieces, each
    // holding data, so nothing can be left out except whole zero output pieces.
    const out = await open(join(dir, 'zeros-unaligned'), 'w+');
    await out.truncate(MiB);
    const copied = await copyFileRanges([{ fd: input.fd, at: 0, offset: 1000, length: source.length }], out.fd, { skipZeros: true });
    await out.close();
    const written = await readFile(join(dir, 'zeros-unaligned'));
    assert.ok(written.subarray(1000, 1000 + source.length).equals(source));
    // Input pieces 1-2 (8 KiB of zeros at output 5096..13288) hold one whole output piece (8192..12288).
    assert.equal(copied.written, source.length - 4 * KiB);
  } finally {
    await input.close();
  }
});

test('a direct descriptor takes the aligned runs (where the filesystem has O_DIRECT); unaligned ones go through the page cache', async (t) => {
  const source = randomBytes(3 * MiB);
  await writeFile(join(dir, 'direct-in'), source);
  const path = join(dir, 'direct-out');
  const out = await open(path, 'w+');
  await out.truncate(4 * MiB);
  let direct;
  try {
    direct = await open(path, constants.O_WRONLY | constants.O_DIRECT);
  } catch {
    await out.close();
    t.skip(`${dir} refuses O_DIRECT`);
    return;
  }
  const input = await open(join(dir, 'direct-in'), 'r');
  try {
    const copied = await copyFileRanges(
      [
        { fd: input.fd, at: 0, offset: 0, length: 2 * MiB },
        { fd: input.fd, at: 2 * MiB, offset: 2 * MiB + 100, length: MiB },
      ],
      out.fd,
      { directFd: direct.fd, skipZeros: false },
    );
    assert.equal(copied.written, 3 * MiB);
    if (copied.refused) assert.equal(copied.direct, 0, 'refused: everything went through the page cache');
    else assert.equal(copied.direct, 2 * MiB, 'the aligned range went direct, the unaligned one did not');
  } finally {
    await Promise.all([input.close(), out.close(), direct.close()]);
  }
  const written = await readFile(path);
  assert.ok(written.subarray(0, 2 * MiB).equals(source.subarray(0, 2 * MiB)));
  assert.ok(written.subarray(2 * MiB + 100, 3 * MiB + 100).equals(source.subarray(2 * MiB)));
});

test('an input that ends before its range is EOF on the read side, naming the byte and the range', async () => {
  await writeFile(join(dir, 'short'), randomBytes(10_000));
  const input = await open(join(dir, 'short'), 'r');
  const out = await open(join(dir, 'short-out'), 'w+');
  try {
    await assert.rejects(
      copyFileRanges(
        [
          { fd: input.fd, at: 0, offset: 0, length: 4096 },
          { fd: input.fd, at: 8192, offset: 8192, length: 4096 },
        ],
        out.fd,
        { skipZeros: false },
      ),
      (error: CopyRangesError) => error.code === 'EOF' && error.side === 'read' && error.position === 10_000 && error.range === 1,
    );
  } finally {
    await Promise.all([input.close(), out.close()]);
  }
});

test('a failed read or write says its side and errno; bad arguments are thrown at the call, not a crash', async () => {
  await writeFile(join(dir, 'in'), randomBytes(8192));
  const input = await open(join(dir, 'in'), 'r');
  const readOnly = await open(join(dir, 'in'), 'r');
  try {
    await assert.rejects(copyFileRanges([{ fd: 987_654, at: 0, offset: 0, length: 10 }], readOnly.fd, { skipZeros: false }), (error: CopyRangesError) => error.code === 'EBADF' && error.side === 'read');
    await assert.rejects(copyFileRanges([{ fd: input.fd, at: 0, offset: 0, length: 8192 }], readOnly.fd, { skipZeros: false }), (error: CopyRangesError) => error.code === 'EBADF' && error.side === 'write' && error.position === 0);
    assert.throws(() => copyFileRanges([{ fd: input.fd, at: -1, offset: 0, length: 1 }], readOnly.fd, { skipZeros: false }), RangeError);
    assert.throws(() => copyFileRanges([{ fd: input.fd, at: 0.5, offset: 0, length: 1 }], readOnly.fd, { skipZeros: false }), RangeError);
    assert.deepEqual(await copyFileRanges([], readOnly.fd, { skipZeros: true }), { written: 0, direct: 0, refused: false });
  } finally {
    await Promise.all([input.close(), readOnly.close()]);
  }
});
