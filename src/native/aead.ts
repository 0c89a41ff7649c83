/**
 * AES-256-GCM opened into memory the caller owns, from the addon's `native/aead.c` (Node's
 * own OpenSSL): Node's Decipher answers every call with a fresh, zeroed buffer, and fresh
 * memory costs a page fault every 4 KiB. The codec decrypts each stored object into a buffer
 * it reuses (codec.ts).
 */
import { createRequire } from 'node:module';

interface Aead {
  /**
   * Decrypts `ciphertext` into the start of `out` (at least as long) with a 32-byte key and
   * 12-byte nonce, authenticating it and `aad` against the 16-byte `tag`: true when authentic
   * (otherwise `out`'s bytes are unspecified). A TypeError for wrong sizes.
   */
  aesGcmOpenInto(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, out: Uint8Array): boolean;
}

// Compiled code lives in dist/src/native/, the addon in build/Release/ at the project root.
const require = createRequire(import.meta.url);
export const aead: Aead = require('../../../build/Release/coffer_native.node') as Aead;
