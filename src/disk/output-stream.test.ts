/**
 * OutputStream: every failure of the stream reaches the writer, whenever it comes, and
 * nothing ever waits on a stream that already failed.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { carriesData, OutputStream } from './output-stream.js';

/** A stream that takes `accept` bytes, then fails every write with `code`. */
function failingAfter(accept: number, code: string): Writable {
  let taken = 0;
  return new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, callback) {
      taken += chunk.length;
      setImmediate(() => callback(taken > accept ? Object.assign(new Error(`write ${code}`), { code }) : null));
    },
  });
}

test('a reader gone (EPIPE) fails the waiting write, later writes and finish: E_TARGET_UNWRITABLE naming EPIPE', async () => {
  const output = new OutputStream(failingAfter(4096, 'EPIPE'));
  const piece = new Uint8Array(2048);
  const failure = await (async () => {
    for (let i = 0; i < 100; i++) await output.write(piece);
  })().then(() => undefined, (error: unknown) => error);
  assert.ok(isCofferError(failure, 'E_TARGET_UNWRITABLE'), String(failure));
  assert.match((failure as Error).message, /its reader closed it before all the data was written \(EPIPE\)/);
  await assert.rejects(output.write(piece), (error) => error === failure);
  await assert.rejects(output.finish(), (error) => error === failure);
});

test('a full disk (ENOSPC) is E_NO_SPACE, also when it comes after the last write, at finish', async () => {
  const output = new OutputStream(failingAfter(0, 'ENOSPC'));
  await output.write(new Uint8Array(10)); // accepted into the buffer; the failure comes later
  await assert.rejects(output.finish(), (error) => isCofferError(error, 'E_NO_SPACE') && /no space left writing standard output/.test(error.message));
});

test('a stream destroyed before the first write fails it at once (no wait for a drain that never comes)', async () => {
  const stream = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  stream.destroy();
  const output = new OutputStream(stream, 'the archive');
  await assert.rejects(output.write(new Uint8Array(1)), (error) => isCofferError(error, 'E_TARGET_UNWRITABLE') && /cannot write the archive/.test(error.message));
});

test('a slow stream gets every byte, in order, with one drain listener however many writes wait; it is marked as carrying data', async () => {
  const received: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 64,
    write(chunk: Buffer, _encoding, callback) {
      received.push(chunk);
      setTimeout(callback, 1);
    },
  });
  assert.equal(carriesData(stream), false);
  const output = new OutputStream(stream);
  assert.equal(carriesData(stream), true);
  const pieces = Array.from({ length: 40 }, (_, i) => new Uint8Array(100).fill(i));
  const writes = pieces.map((piece) => output.write(piece));
  assert.ok(stream.listenerCount('drain') <= 1, `${stream.listenerCount('drain')} drain listeners`);
  await Promise.all(writes);
  await output.finish();
  assert.ok(Buffer.concat(received).equals(Buffer.concat(pieces)));
});
