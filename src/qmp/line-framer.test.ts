import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { LineFramer } from './line-framer.js';

const feed = (framer: LineFramer, chunks: (string | Buffer)[]): string[] =>
  chunks.flatMap((c) => framer.push(typeof c === 'string' ? Buffer.from(c) : c));

test('lines split anywhere, several per chunk, CRLF or LF, empty lines skipped', () => {
  const text = '{"a":1}\r\n{"b":"é"}\n\r\n\n{"c":[1,2]}\r\n';
  const expected = ['{"a":1}', '{"b":"é"}', '{"c":[1,2]}'];
  const bytes = Buffer.from(text);
  // Every split point, including inside the two-byte é and between CR and LF.
  for (let cut = 0; cut <= bytes.length; cut++) {
    assert.deepEqual(feed(new LineFramer(100, 'peer'), [bytes.subarray(0, cut), bytes.subarray(cut)]), expected, `cut at ${cut}`);
  }
  const oneByOne = [...bytes].map((b) => Buffer.from([b]));
  assert.deepEqual(feed(new LineFramer(100, 'peer'), oneByOne), expected);
  assert.deepEqual(feed(new LineFramer(100, 'peer'), [bytes]), expected);
});

test('an unfinished line stays buffered until its end arrives', () => {
  const framer = new LineFramer(100, 'peer');
  assert.deepEqual(framer.push(Buffer.from('{"x"')), []);
  assert.equal(framer.bufferedBytes, 4);
  assert.deepEqual(framer.push(Buffer.from(':1}\r\n{"y"')), ['{"x":1}']);
  assert.equal(framer.bufferedBytes, 4);
});

test('a line longer than the limit is E_PROTOCOL, whether or not its end came', () => {
  const limit = 16;
  assert.deepEqual(new LineFramer(limit, 'p').push(Buffer.from(`${'x'.repeat(limit)}\n`)), ['x'.repeat(limit)]);
  const cases: [string, string[]][] = [
    ['ended in one chunk', [`${'x'.repeat(limit + 1)}\n`]],
    ['never ended', ['x'.repeat(limit + 1)]],
    ['grown over chunks', ['x'.repeat(10), 'x'.repeat(10)]],
    ['after a good line', ['{"ok":1}\n', 'y'.repeat(limit + 1)]],
  ];
  for (const [name, chunks] of cases) {
    assert.throws(() => feed(new LineFramer(limit, 'QMP at /s'), chunks), (err) =>
      isCofferError(err, 'E_PROTOCOL') && /QMP at \/s sent a message longer than 16 bytes/.test(err.message), name);
  }
});
