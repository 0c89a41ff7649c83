import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { ObjectCodec, SEAL_OVERHEAD } from './codec.js';
import { ENVELOPE_HEADER_SIZE, NONCE_SIZE, ObjectKind } from './format/envelope.js';
import { newMasterKey } from './keys/master-key.js';

const encrypted = () => new ObjectCodec({ masterKey: newMasterKey(), compressionLevel: 3 });
const plain = () => new ObjectCodec({ masterKey: null, compressionLevel: 3 });
const compressible = Buffer.alloc(256 * 1024, 'coffer ');
const incompressible = randomBytes(64 * 1024);

const cases = [
  { name: 'encrypted, compressible', codec: encrypted, data: compressible },
  { name: 'encrypted, incompressible', codec: encrypted, data: incompressible },
  { name: 'unencrypted, compressible', codec: plain, data: compressible },
  { name: 'unencrypted, incompressible', codec: plain, data: incompressible },
  { name: 'empty', codec: encrypted, data: Buffer.alloc(0) },
];

for (const { name, codec: make, data } of cases) {
  test(`seal then open gives the plaintext back (${name})`, () => {
    const codec = make();
    const id = codec.idOf(data);
    const sealed = codec.seal(data, ObjectKind.chunk, id);
    assert.deepEqual(codec.open(sealed, ObjectKind.chunk, 'x', id), data);
    assert.deepEqual(codec.open(sealed, ObjectKind.chunk, 'x', id, { rehash: false }), data);
    assert.deepEqual(codec.open(sealed, ObjectKind.chunk, 'x', id, { rehash: true, scratch: true }), data);
  });
}

test('scratch opens reuse one buffer and still check every object', () => {
  const codec = encrypted();
  const big = Buffer.alloc(256 * 1024, 'first ');
  const small = Buffer.alloc(64 * 1024, 'second ');
  const [bigId, smallId] = [codec.idOf(big), codec.idOf(small)];
  const [bigSealed, smallSealed] = [codec.seal(big, ObjectKind.chunk, bigId), codec.seal(small, ObjectKind.chunk, smallId)];
  const first = codec.open(bigSealed, ObjectKind.chunk, 'x', bigId, { rehash: true, scratch: true });
  assert.deepEqual(first, big);
  const second = codec.open(smallSealed, ObjectKind.chunk, 'x', smallId, { rehash: true, scratch: true });
  assert.deepEqual(second, small);
  assert.equal(second.buffer, first.buffer, 'the same memory, overwritten');
  // Opened under the other's id: the rehash refuses it (the tag would too, but unencrypted only the rehash can).
  const plainCodec = plain();
  const sealed = plainCodec.seal(big, ObjectKind.chunk, plainCodec.idOf(big));
  assert.throws(() => plainCodec.open(sealed, ObjectKind.chunk, 'x', plainCodec.idOf(small), { rehash: true, scratch: true }), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
});

test('a zstd frame longer than its header says is corrupt, with or without scratch', () => {
  const codec = plain();
  const id = codec.idOf(compressible);
  const sealed = codec.seal(compressible, ObjectKind.chunk, id);
  sealed.writeUInt32LE(compressible.length - 1, 8); // the header's plaintext length
  for (const scratch of [false, true]) {
    assert.throws(() => codec.open(sealed, ObjectKind.chunk, 'x', id, { rehash: true, scratch }), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'), `scratch ${scratch}`);
  }
});

test('compression is used only when it shrinks', () => {
  const codec = plain();
  assert.ok(codec.seal(compressible, ObjectKind.chunk, codec.idOf(compressible)).length < compressible.length / 10);
  assert.equal(codec.seal(incompressible, ObjectKind.chunk, codec.idOf(incompressible)).length, ENVELOPE_HEADER_SIZE + incompressible.length);
});

test('ids: SHA-256 when unencrypted, a keyed MAC that differs per repository when encrypted', () => {
  assert.deepEqual(plain().idOf(compressible), createHash('sha256').update(compressible).digest());
  const a = encrypted().idOf(compressible);
  const b = encrypted().idOf(compressible);
  assert.notDeepEqual(a, createHash('sha256').update(compressible).digest());
  assert.notDeepEqual(a, b);
});

test('random nonces: sealing the same plaintext twice gives different ciphertexts', () => {
  const codec = encrypted();
  const id = codec.idOf(compressible);
  assert.notDeepEqual(codec.seal(compressible, ObjectKind.chunk, id), codec.seal(compressible, ObjectKind.chunk, id));
});

test('every flipped byte of an encrypted object is detected', () => {
  const codec = encrypted();
  const data = randomBytes(300);
  const id = codec.idOf(data);
  const sealed = codec.seal(data, ObjectKind.chunk, id);
  for (let i = 0; i < sealed.length; i++) {
    const copy = Buffer.from(sealed);
    copy[i] = (copy[i] as number) ^ 0x01;
    assert.throws(() => codec.open(copy, ObjectKind.chunk, 'x', id, { rehash: false }), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'), `byte ${i}`);
  }
});

test('a flipped payload byte of an unencrypted object is caught by its id', () => {
  const codec = plain();
  const id = codec.idOf(incompressible);
  const sealed = codec.seal(incompressible, ObjectKind.chunk, id);
  sealed[ENVELOPE_HEADER_SIZE + 100] = (sealed[ENVELOPE_HEADER_SIZE + 100] as number) ^ 0x80;
  // Unencrypted: the id is always rechecked, whatever the caller asks.
  assert.throws(() => codec.open(sealed, ObjectKind.chunk, 'x', id, { rehash: false }), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
});

test('an object stored under another id, or of another kind, is refused, even without a rehash', () => {
  for (const codec of [encrypted(), plain()]) {
    const id = codec.idOf(compressible);
    const sealed = codec.seal(compressible, ObjectKind.chunk, id);
    const otherId = codec.idOf(incompressible);
    assert.throws(() => codec.open(sealed, ObjectKind.chunk, 'x', otherId, { rehash: false }), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
    assert.throws(() => codec.open(sealed, ObjectKind.manifest, 'x', id), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
  }
});

test('another repository\'s key cannot open an object', () => {
  const codec = encrypted();
  const id = codec.idOf(compressible);
  const sealed = codec.seal(compressible, ObjectKind.chunk, id);
  assert.throws(() => encrypted().open(sealed, ObjectKind.chunk, 'x', id), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
});

test('truncated and garbage objects are refused, never crash', () => {
  const codec = encrypted();
  const id = codec.idOf(compressible);
  const sealed = codec.seal(compressible, ObjectKind.chunk, id);
  for (const length of [0, 3, ENVELOPE_HEADER_SIZE, ENVELOPE_HEADER_SIZE + NONCE_SIZE, sealed.length - 1]) {
    assert.throws(() => codec.open(sealed.subarray(0, length), ObjectKind.chunk, 'x', id), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'), `length ${length}`);
  }
  for (let i = 0; i < 200; i++) {
    const garbage = randomBytes(1 + (i % 64));
    if (i % 2 === 0) Buffer.from('CFE1').copy(garbage);
    assert.throws(() => plain().open(garbage, ObjectKind.chunk, 'x', id), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
  }
});

test('sealInto seals in place (the output over its own plaintext) what open reads back, and refuses a short output', () => {
  for (const codec of [encrypted(), plain()]) {
    for (const data of [compressible, incompressible]) {
      const id = codec.idOf(data);
      const slot = Buffer.from(new SharedArrayBuffer(data.length + SEAL_OVERHEAD));
      slot.set(data);
      const length = codec.sealInto(slot.subarray(0, data.length), ObjectKind.chunk, id, slot);
      assert.ok(length <= data.length + SEAL_OVERHEAD);
      assert.ok(codec.open(Buffer.from(slot.subarray(0, length)), ObjectKind.chunk, 'x', id, { rehash: true }).equals(data));
      if (data === compressible) assert.ok(length < data.length / 10, 'compressed');
    }
    assert.throws(() => codec.sealInto(incompressible, ObjectKind.chunk, codec.idOf(incompressible), Buffer.alloc(incompressible.length)), RangeError);
  }
});
