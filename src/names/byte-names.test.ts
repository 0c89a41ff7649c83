import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decodeName, encodeName, hasRawBytes, hostPath, isDecodedName, nameBytesHex, printableName, printableText, printableWithBytes, unescapeName } from './byte-names.js';

const bytes = (...values: number[]): Buffer => Buffer.from(values);

test('valid UTF-8 decodes as usual, a leading byte-order mark included, and encodes back', () => {
  for (const text of ['café', 'plain', '日本語', '😀 emoji', '\uFEFFbom', '']) {
    const raw = Buffer.from(text, 'utf8');
    assert.equal(decodeName(raw), text);
    assert.equal(hasRawBytes(text), false);
    assert.deepEqual(encodeName(text), raw);
  }
});

test('bytes that are not UTF-8 stay distinct and come back exactly', () => {
  const e9 = decodeName(bytes(0x63, 0x61, 0x66, 0xe9));
  const e8 = decodeName(bytes(0x63, 0x61, 0x66, 0xe8));
  assert.notEqual(e9, e8, 'caf\\xe9 and caf\\xe8 are two names');
  assert.equal(e9, 'caf\uDCE9');
  assert.equal(hasRawBytes(e9), true);
  assert.deepEqual(encodeName(e9), bytes(0x63, 0x61, 0x66, 0xe9));
  // Overlong forms, encoded surrogates, truncated sequences and code points above U+10FFFF are not UTF-8.
  for (const raw of [bytes(0xc0, 0xaf), bytes(0xed, 0xa0, 0x80), bytes(0xe2, 0x82), bytes(0xf4, 0x90, 0x80, 0x80), bytes(0xff, 0xfe), bytes(0x80)]) {
    const name = decodeName(raw);
    assert.equal(name.includes('\uFFFD'), false);
    assert.equal([...name].length, raw.length, `each byte of ${raw.toString('hex')} is one raw byte`);
    assert.deepEqual(encodeName(name), raw);
  }
  // Valid characters around invalid bytes are kept.
  assert.equal(decodeName(bytes(0xc3, 0xa9, 0xe9, 0xf0, 0x9f, 0x98, 0x80)), 'é\uDCE9😀');
});

test('any bytes round-trip through decodeName and encodeName', () => {
  for (let i = 0; i < 5000; i++) {
    const raw = randomBytes(1 + (i % 40));
    assert.deepEqual(encodeName(decodeName(raw)), raw, raw.toString('hex'));
    const shown = printableName(decodeName(raw));
    assert.deepEqual(encodeName(unescapeName(shown) ?? shown), raw, `${shown} reads back to ${raw.toString('hex')}`);
  }
});

test('printableName shows raw bytes and control characters as \\xNN, and unescapeName reads them back', () => {
  const name = decodeName(bytes(0x63, 0x61, 0x66, 0xe9, 0x1b));
  assert.equal(printableName(name), 'caf\\xe9\\x1b');
  assert.equal(printableName('😀café'), '😀café', 'a surrogate pair is a character, not raw bytes');
  assert.equal(unescapeName('caf\\xe9\\x1b'), name);
  assert.equal(unescapeName('caf\\xc3\\xa9'), 'café', 'bytes that spell UTF-8 are that character');
  assert.equal(unescapeName('café'), undefined, 'nothing to unescape');
  assert.equal(unescapeName('a\\xZZ'), undefined);
});

test('a backslash prints as \\\\, so a raw byte and the text that spells it never print alike, and both read back', () => {
  const raw = decodeName(bytes(0x63, 0x61, 0x66, 0xe9));
  const literal = 'caf\\xe9';
  assert.equal(printableName(raw), 'caf\\xe9');
  assert.equal(printableName(literal), 'caf\\\\xe9');
  assert.notEqual(printableName(raw), printableName(literal));
  assert.equal(unescapeName(printableName(raw)), raw);
  assert.equal(unescapeName(printableName(literal)), literal);
  assert.equal(unescapeName('a\\\\\\xe9'), `a\\${raw.slice(3)}`, '\\\\ then \\xe9: a backslash, then the byte');
  assert.equal(unescapeName('a\\b'), undefined, 'a lone backslash is not an escape');
  for (const name of [raw, literal, 'C:\\temp\\x', '\\\\server', 'tab\there\\', decodeName(bytes(0x5c, 0xff, 0x5c, 0x78))]) {
    assert.equal(unescapeName(printableName(name)) ?? printableName(name), name, `${printableName(name)} reads back`);
  }
});

test('printableText escapes what a terminal must not get but leaves backslashes of printed names alone', () => {
  assert.equal(printableText(`${printableName('caf\\xe9')}: \u001b[31m ${decodeName(bytes(0xe9))}`), 'caf\\\\xe9: \\x1b[31m \\xe9');
});

test('nameBytesHex gives the bytes of a name that is not UTF-8, and nothing for one that is', () => {
  assert.equal(nameBytesHex(decodeName(bytes(0x63, 0x61, 0x66, 0xe9))), '636166e9');
  assert.equal(nameBytesHex('café'), undefined);
});

test('printableWithBytes: the printable name, with its bytes in hex whenever it shows an escape', () => {
  const cases: [string, Record<string, string>][] = [
    ['café', { name: 'café' }],
    [decodeName(bytes(0x63, 0x61, 0x66, 0xe9)), { name: 'caf\\xe9', nameBytes: '636166e9' }],
    ['caf\\xe9', { name: 'caf\\\\xe9', nameBytes: '6361665c786539' }],
    ['esc\u001b', { name: 'esc\\x1b', nameBytes: '6573631b' }],
  ];
  for (const [name, want] of cases) {
    const got = printableWithBytes('name', name);
    assert.deepEqual(got, want, JSON.stringify(name));
    assert.equal(unescapeName(got.name as string) ?? got.name, name, 'the printable name reads back to the name');
    assert.equal(encodeURIComponent(got.name as string).length > 0, true, 'a URL takes it');
  }
});

test('hostPath: a UTF-8 path stays a string, one with raw bytes becomes its exact bytes', () => {
  assert.equal(hostPath('/srv/café'), '/srv/café');
  assert.deepEqual(hostPath(decodeName(Buffer.from('/srv/caf\xe9', 'latin1'))), Buffer.from('/srv/caf\xe9', 'latin1'));
});

test('isDecodedName: what decodeName gives for some bytes, and nothing else', () => {
  assert.ok(isDecodedName('café'));
  assert.ok(isDecodedName(decodeName(Buffer.from('caf\xe9\xff', 'latin1'))));
  assert.ok(!isDecodedName('caf\udcc3\udca9'), 'raw bytes that are the UTF-8 of é: that name is "café"');
  assert.ok(!isDecodedName('a\ud800b'), 'a lone high surrogate stands for no bytes');
  assert.ok(!isDecodedName('a\udc41b'), 'U+DC41 is no raw byte (raw bytes are 0x80..0xFF)');
});
