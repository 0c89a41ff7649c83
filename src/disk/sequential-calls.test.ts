import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SequentialCalls } from './sequential-calls.js';

const settled = () => Promise.resolve();

test('sequential calls: steps run in call order, each after the previous one, and the disk ends at its size', async () => {
  const steps: string[] = [];
  const calls = new SequentialCalls('test target', 300, settled);
  const slow = () => new Promise<void>((resolve) => setTimeout(resolve, 20));
  const first = calls.write(0, 100, async () => {
    await slow();
    steps.push('write 0');
  });
  const second = calls.skipZeros(100, 100, async () => void steps.push('skip 100'));
  const third = calls.write(200, 100, async () => void steps.push('write 200'));
  await Promise.all([first, second, third]);
  await calls.ended();
  assert.deepEqual(steps, ['write 0', 'skip 100', 'write 200']);
});

test('sequential calls: a call not where the previous one ended fails, and so does every call after it', async () => {
  const calls = new SequentialCalls('test target', 300, settled);
  let ran = 0;
  await calls.write(0, 100, async () => void (ran += 1));
  await assert.rejects(calls.write(150, 50, async () => void (ran += 1)), /test target written at 150, expected 100/);
  await assert.rejects(calls.skipZeros(100, 100, async () => void (ran += 1)), /written at 150/);
  await assert.rejects(calls.ended(), /written at 150/);
  assert.equal(ran, 1);
});

test('sequential calls: nothing past the size; finishing short says how much came', async () => {
  const past = new SequentialCalls('test target', 100, settled);
  await assert.rejects(past.skipZeros(0, 101, settled), /test target skipped past its size 100/);
  const short = new SequentialCalls('test target', 100, settled);
  await short.write(0, 60, settled);
  await assert.rejects(short.ended(), /test target got 60 of 100 bytes/);
});

test("sequential calls: a call resolves only once its bytes are written (the writer's `written`)", async () => {
  let release!: () => void;
  const written = new Promise<void>((resolve) => (release = resolve));
  const calls = new SequentialCalls('test target', 10, () => written);
  let resolved = false;
  const call = calls.write(0, 10, settled).then(() => void (resolved = true));
  await calls.ended(); // the step has run…
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(resolved, false); // …but its bytes are not written yet
  release();
  await call;
  assert.equal(resolved, true);
});
