import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Fifo } from './fifo.js';

test('Fifo: items come out in the order they went in, across compactions and interleaved use', () => {
  const fifo = new Fifo<number>();
  assert.equal(fifo.shift(), undefined);
  let next = 0;
  let expected = 0;
  // Bursts larger than the compaction threshold, drained partly, so the head moves through many compactions.
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 3000; i++) fifo.push(next++);
    for (let i = 0; i < 2500; i++) assert.equal(fifo.shift(), expected++);
    assert.equal(fifo.length, next - expected);
    assert.equal(fifo.peek(), expected);
  }
  while (fifo.length > 0) assert.equal(fifo.shift(), expected++);
  assert.equal(expected, next);
  assert.equal(fifo.shift(), undefined);
  assert.equal(fifo.peek(), undefined);
});

test('Fifo: drain returns what is queued, oldest first, and empties the queue', () => {
  const fifo = new Fifo<string>();
  for (const s of ['a', 'b', 'c', 'd']) fifo.push(s);
  assert.equal(fifo.shift(), 'a');
  assert.deepEqual(fifo.drain(), ['b', 'c', 'd']);
  assert.equal(fifo.length, 0);
  fifo.push('e');
  assert.equal(fifo.shift(), 'e');
});

test('Fifo: 200,000 items pushed, then shifted, all in order', () => {
  const fifo = new Fifo<number>();
  for (let i = 0; i < 200_000; i++) fifo.push(i);
  let sum = 0;
  for (let i = 0; i < 200_000; i++) sum += fifo.shift() as number;
  assert.equal(sum, (200_000 * 199_999) / 2);
});
