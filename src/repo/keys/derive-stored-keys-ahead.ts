import { MAX_KEYS_AHEAD } from './derive-local-keys-ahead.js';
import { deriveAhead, parseKeyFile } from './key-file.js';

/** What {@link deriveStoredKeysAhead} reads key files through: a backend's list and get. */
export interface KeyFileStore {
  list(prefix: string): AsyncIterable<{ key: string }>;
  get(key: string): Promise<Buffer>;
}

/**
 * Starts deriving the wrapping key of every key file (`keys/<16 hex>`) of the repository in
 * `store` from `passphrase`: the key files listed and read (together), then each one's scrypt
 * started; returns how many were started (0 when there are more than
 * {@link MAX_KEYS_AHEAD}). For an object store, where the reads are round trips: S3's,
 * started while the command's code still loads. Best effort, like
 * {@link deriveLocalKeysAhead}: nothing started on any failure, which the repository's
 * opening then meets and reports.
 */
export async function deriveStoredKeysAhead(store: KeyFileStore, passphrase: string): Promise<number> {
  try {
    const names: string[] = [];
    for await (const entry of store.list('keys/')) {
      if (!/^keys\/[0-9a-f]{16}$/.test(entry.key)) continue;
      names.push(entry.key);
      if (names.length > MAX_KEYS_AHEAD) return 0;
    }
    const files = await Promise.all(names.map(async (name) => parseKeyFile(await store.get(name), name)));
    for (const file of files) deriveAhead(file, passphrase);
    return files.length;
  } catch {
    return 0;
  }
}
