/**
 * @module repo/keys
 * The repository's key files (key-file.ts), importable alone: this entry loads no more than
 * node:crypto and the error type, so a command can start deriving its passphrase's wrapping
 * keys (scrypt: ~0.14 s, 64 MiB, on libuv's thread pool) while the rest of its code, the
 * repository's included, is still loading (derive-local-keys-ahead.ts). The repository's own
 * opening (repo/index.js, `openRepository`) then finds the derivation under way or done.
 */
export { deriveLocalKeysAhead } from './derive-local-keys-ahead.js';
export { deriveStoredKeysAhead, type KeyFileStore } from './derive-stored-keys-ahead.js';
