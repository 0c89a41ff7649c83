import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { aead } from './aead.js';

/** Sealed by Node's own AES-256-GCM: what the addon must open. */
function seal(key: Buffer, nonce: Buffer, aad: Buffer, plaintext: Buffer): { ciphertext: Buffer; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

test('opens what Node sealed, into shared memory, for lengths around the block size and a 2 MiB frame', () => {
  const key = randomBytes(32);
  for (const length of [0, 1, 15, 16, 17, 4096, 2 * 2 ** 20 + 3]) {
    const nonce = randomBytes(12);
    const aad = randomBytes(41);
    const plaintext = randomBytes(length);
    const { ciphertext, tag } = seal(key, nonce, aad, plaintext);
    const out = new Uint8Array(new SharedArrayBuffer(length + 10));
    assert.equal(aead.aesGcmOpenInto(key, nonce, aad, ciphertext, tag, out), true, `${length} bytes`);
    assert.ok(Buffer.from(out.buffer, 0, length).equals(plaintext), `${length} bytes`);
  }
});

test('a flipped bit anywhere (ciphertext, tag, aad, nonce, key) fails authentication', () => {
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  const aad = randomBytes(20);
  const { ciphertext, tag } = seal(key, nonce, aad, randomBytes(1000));
  const flip = (b: Buffer, at: number) => {
    const copy = Buffer.from(b);
    copy[at] = (copy[at] as number) ^ 1;
    return copy;
  };
  const out = Buffer.alloc(1000);
  assert.equal(aead.aesGcmOpenInto(key, nonce, aad, flip(ciphertext, 500), tag, out), false);
  assert.equal(aead.aesGcmOpenInto(key, nonce, aad, ciphertext, flip(tag, 15), out), false);
  assert.equal(aead.aesGcmOpenInto(key, nonce, flip(aad, 0), ciphertext, tag, out), false);
  assert.equal(aead.aesGcmOpenInto(key, flip(nonce, 11), aad, ciphertext, tag, out), false);
  assert.equal(aead.aesGcmOpenInto(flip(key, 31), nonce, aad, ciphertext, tag, out), false);
  assert.equal(aead.aesGcmOpenInto(key, nonce, aad, ciphertext, tag, out), true);
});

test('wrong sizes or types are a TypeError, never a crash', () => {
  const ok = { key: randomBytes(32), nonce: randomBytes(12), aad: Buffer.alloc(0), ciphertext: randomBytes(64), tag: randomBytes(16) };
  assert.throws(() => aead.aesGcmOpenInto(randomBytes(16), ok.nonce, ok.aad, ok.ciphertext, ok.tag, Buffer.alloc(64)), TypeError);
  assert.throws(() => aead.aesGcmOpenInto(ok.key, randomBytes(16), ok.aad, ok.ciphertext, ok.tag, Buffer.alloc(64)), TypeError);
  assert.throws(() => aead.aesGcmOpenInto(ok.key, ok.nonce, ok.aad, ok.ciphertext, randomBytes(8), Buffer.alloc(64)), TypeError);
  assert.throws(() => aead.aesGcmOpenInto(ok.key, ok.nonce, ok.aad, ok.ciphertext, ok.tag, Buffer.alloc(63)), TypeError); // no room
  assert.throws(() => (aead.aesGcmOpenInto as (...args: unknown[]) => boolean)(ok.key, ok.nonce, ok.aad, 'text', ok.tag, Buffer.alloc(64)), TypeError);
  assert.throws(() => (aead.aesGcmOpenInto as (...args: unknown[]) => boolean)(ok.key, ok.nonce), TypeError);
});

test('seals what Node opens, into other memory or in place from the same byte; a shifted overlap is refused', () => {
  const key = randomBytes(32);
  for (const length of [0, 1, 17, 2 * 2 ** 20 + 5]) {
    const nonce = randomBytes(12);
    const aad = randomBytes(33);
    const plaintext = randomBytes(length);
    const open = (ciphertext: Uint8Array, tag: Uint8Array) => {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    };
    const out = new Uint8Array(new SharedArrayBuffer(length + 4));
    const tag = new Uint8Array(16);
    aead.aesGcmSealInto(key, nonce, aad, plaintext, out, tag);
    assert.ok(open(out.subarray(0, length), tag).equals(plaintext), `${length} bytes`);
    const inPlace = Buffer.from(plaintext);
    const tag2 = Buffer.alloc(16);
    aead.aesGcmSealInto(key, nonce, aad, inPlace, inPlace, tag2);
    assert.ok(open(inPlace, tag2).equals(plaintext), `${length} bytes in place`);
  }
  const memory = randomBytes(100);
  assert.throws(() => aead.aesGcmSealInto(key, randomBytes(12), Buffer.alloc(0), memory.subarray(0, 50), memory.subarray(10, 60), Buffer.alloc(16)), TypeError);
  assert.throws(() => aead.aesGcmSealInto(key, randomBytes(12), Buffer.alloc(0), randomBytes(10), Buffer.alloc(9), Buffer.alloc(16)), TypeError);
});

test('opening into memory that overlaps the ciphertext is refused unless in place', () => {
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  const plaintext = randomBytes(64);
  const { ciphertext, tag } = seal(key, nonce, Buffer.alloc(0), plaintext);
  const memory = Buffer.alloc(80);
  ciphertext.copy(memory, 0);
  assert.throws(() => aead.aesGcmOpenInto(key, nonce, Buffer.alloc(0), memory.subarray(0, 64), tag, memory.subarray(8, 72)), TypeError);
  assert.equal(aead.aesGcmOpenInto(key, nonce, Buffer.alloc(0), memory.subarray(0, 64), tag, memory.subarray(0, 64)), true);
  assert.ok(memory.subarray(0, 64).equals(plaintext));
});
