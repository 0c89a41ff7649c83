import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UploadQueue } from './upload-queue.js';

/** An upload that finishes when told to. */
function pending() {
  let finish!: () => void;
  let fail!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  return { upload: () => done, finish, fail };
}

test('start returns once the upload began; the limit holds the next one back until a slot frees', async () => {
  const queue = new UploadQueue(2);
  const [a, b, c] = [pending(), pending(), pending()];
  await queue.start(a.upload);
  await queue.start(b.upload);
  let thirdStarted = false;
  const third = queue.start(c.upload).then(() => (thirdStarted = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(thirdStarted, false, 'two run, the third waits');
  b.finish();
  await third;
  assert.equal(thirdStarted, true);
  let drained = false;
  const draining = queue.drain().then(() => (drained = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(drained, false, 'drain waits for the uploads still running');
  a.finish();
  c.finish();
  await draining;
});

test('a failed upload fails drain and every later start; the others still finish first', async () => {
  const queue = new UploadQueue(4);
  const [a, b] = [pending(), pending()];
  await queue.start(a.upload);
  await queue.start(b.upload);
  a.fail(new Error('PUT refused'));
  await new Promise((resolve) => setTimeout(resolve, 0));
  await assert.rejects(queue.start(async () => assert.fail('must not start after a failure')), /PUT refused/);
  let drainSettled = false;
  const draining = assert.rejects(queue.drain(), /PUT refused/).then(() => (drainSettled = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(drainSettled, false, 'drain waits for b');
  b.finish();
  await draining;
});

test('a start waiting for a slot learns of a failure instead of waiting forever', async () => {
  const queue = new UploadQueue(1);
  const a = pending();
  await queue.start(a.upload);
  const waiting = queue.start(async () => assert.fail('must not start after a failure'));
  a.fail(new Error('gateway gone'));
  await assert.rejects(waiting, /gateway gone/);
  assert.throws(() => new UploadQueue(0), RangeError);
});
