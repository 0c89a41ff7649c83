import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { decompressLznt1 } from './lznt1.js';

// Vectors built from the format (see lznt1.ts); units compressed by ntfs-3g itself are
// checked against ntfscat in ntfs-extras.integ.test.ts.
const abc = Uint8Array.from([0x05, 0xb0, 0x08, 0x61, 0x62, 0x63, 0x06, 0x20]); // 'abc' + (back 3, 9 bytes)

test('a compressed chunk: literals then an overlapping back-reference', () => {
  const out = new Uint8Array(8192);
  assert.equal(decompressLznt1(abc, out, 't'), 12);
  assert.equal(Buffer.from(out.subarray(0, 12)).toString(), 'abcabcabcabc');
  assert.ok(out.subarray(12).every((b) => b === 0));
});

test('an uncompressed chunk then a compressed one: the second starts at 4096', () => {
  const raw = new Uint8Array(4096).map((_, i) => i % 251);
  const input = Buffer.concat([Buffer.from([0xff, 0x3f]), raw, abc, Buffer.from([0, 0])]);
  const out = new Uint8Array(16384);
  assert.equal(decompressLznt1(input, out, 't'), 4096 + 12);
  assert.deepEqual(out.subarray(0, 4096), raw);
  assert.equal(Buffer.from(out.subarray(4096, 4108)).toString(), 'abcabcabcabc');
});

test('a short compressed chunk followed by another leaves zeros up to 4096', () => {
  const out = new Uint8Array(16384);
  assert.equal(decompressLznt1(Buffer.concat([abc, abc]), out, 't'), 4096 + 12);
  assert.ok(out.subarray(12, 4096).every((b) => b === 0));
  assert.equal(Buffer.from(out.subarray(4096, 4108)).toString(), 'abcabcabcabc');
});

test('the displacement widens as the chunk fills (4 bits up to 16 bytes out, then more)', () => {
  // 17 literals 'a'..'q', then at p = 17 a reference with 5 displacement bits: back 17, 3 bytes.
  const literals = Array.from({ length: 17 }, (_, i) => 0x61 + i);
  const token = ((17 - 1) << 11) | 0; // lengthBits = 11 at p = 17
  const body = [0x00, ...literals.slice(0, 8), 0x00, ...literals.slice(8, 16), 0x02, literals[16]!, token & 0xff, token >> 8];
  const header = (body.length + 2 - 3) | 0xb000;
  const out = new Uint8Array(4096);
  assert.equal(decompressLznt1(Uint8Array.from([header & 0xff, header >> 8, ...body]), out, 't'), 20);
  assert.equal(Buffer.from(out.subarray(0, 20)).toString(), 'abcdefghijklmnopqabc');
});

test('damaged streams are E_FS_CORRUPT, never a crash', () => {
  const cases = [
    Uint8Array.from([0x03, 0xb0, 0x01, 0x00, 0x10]), // a back-reference with nothing out yet
    Uint8Array.from([0x40, 0xb0, 0x00]), // a chunk longer than the input
    Uint8Array.from([0x05, 0xb0, 0x08, 0x61, 0x62, 0x63, 0xff, 0x2f]), // copies past 4096 bytes
  ];
  for (const input of cases) assert.throws(() => decompressLznt1(input, new Uint8Array(65536), 't'), (e) => isCofferError(e, 'E_FS_CORRUPT'));
});
