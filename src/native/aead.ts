/**
 * AES-256-GCM into memory the caller owns, from the addon's `native/aead.c` (Node's own
 * OpenSSL): Node's Cipher and Decipher answer every call with a fresh, zeroed buffer, and
 * fresh memory costs a page fault every 4 KiB. The codec decrypts each stored object into a
 * buffer it reuses, and seals a frame where it is stored from (codec.ts).
 */
import { createRequire } from 'node:module';

interface Aead {
  /**
   * Decrypts `ciphertext` into the start of `out` (at least as long) with a 32-byte key and
   * 12-byte nonce, authenticating it and `aad` against the 16-byte `tag`: true when authentic
   * (otherwise `out`'s bytes are unspecified). A TypeError for wrong sizes.
   */
  aesGcmOpenInto(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, out: Uint8Array): boolean;
  /**
   * Encrypts `plaintext` into the start of `out` (at least as long; it may be the very memory
   * `plaintext` is in, from the same byte, but no other overlap) and writes the 16-byte tag
   * into `tag`. A TypeError for wrong sizes or overlap.
   */
  aesGcmSealInto(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, tag: Uint8Array): void;
}

// Compiled code lives in dist/src/native/, the addon in build/Release/ at the project root.
const require = createRequire(import.meta.url);
export const aead: Aead = require('../../../build/Release/coffer_native.node') as Aead;
