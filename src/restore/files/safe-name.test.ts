import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeName } from '../../names/index.js';
import { fitName, safeName } from './safe-name.js';

const bytes = (name: string): number => encodeName(name).length;

test('a name that fits is kept as it is, whatever its characters', () => {
  const name = 'é'.repeat(127); // 254 bytes
  assert.equal(fitName(name), name);
  assert.deepEqual(safeName(name), { ok: true, name, escaped: false, shortened: false });
});

test('a long name keeps its start, a hash of the whole and its extension, in at most 255 bytes, cut between characters', () => {
  const name = `${'日'.repeat(125)}.docx`; // 380 bytes
  const fitted = fitName(name);
  assert.match(fitted, /^日+~[0-9a-f]{8}\.docx$/);
  assert.ok(bytes(fitted) <= 255 && bytes(fitted) >= 253, `${bytes(fitted)} bytes`);
  assert.equal(fitName(name), fitted, 'the same name gets the same short name');
  assert.notEqual(fitName(`${'日'.repeat(125)}X.docx`), fitted, 'names sharing their start stay apart');
  assert.deepEqual(safeName(name), { ok: true, name: fitted, escaped: false, shortened: true });
});

test('no extension kept when there is none, the name starts with its dot, or it is longer than 16 bytes', () => {
  for (const name of ['a'.repeat(300), `.${'a'.repeat(300)}`, `${'a'.repeat(250)}.${'x'.repeat(20)}`]) {
    const fitted = fitName(name);
    assert.match(fitted, /^[.a]a+~[0-9a-f]{8}$/, fitted);
    assert.equal(bytes(fitted), 255);
  }
});

test('a raw byte and a surrogate pair are never split', () => {
  const raw = '\udce9'; // the byte 0xE9, not UTF-8 (names/byte-names.ts)
  const emoji = '\u{1F600}'; // 4 bytes, two UTF-16 units
  for (const unit of [raw, emoji]) {
    const fitted = fitName(unit.repeat(200) + '.txt');
    assert.equal(fitName(fitted), fitted, 'well formed, and fits');
    assert.ok(!/[\uD800-\uDBFF]~/.test(fitted), 'no half of a pair before the tag');
    assert.ok(bytes(fitted) <= 255);
  }
});

test('escaping comes first: a name that escaping makes too long is shortened too; a zip escapes before it measures', () => {
  const slashes = `${'/'.repeat(100)}.txt`; // 300 bytes escaped
  const safe = safeName(slashes);
  assert.ok(safe.ok && safe.escaped && safe.shortened && bytes(safe.name) <= 255 && safe.name.startsWith('%2F%2F') && safe.name.endsWith('.txt'));
  const zipped = safeName(`${'\udce9'.repeat(100)}.txt`, true); // 100 raw bytes: 300 bytes as %E9
  assert.ok(zipped.ok && zipped.escaped && zipped.shortened && bytes(zipped.name) <= 255 && zipped.name.startsWith('%E9%E9'));
});
