/**
 * The storage a repository lives on, reduced to what both a local directory and an
 * S3-compatible bucket can promise. A backend moves bytes under string keys; it knows nothing
 * of chunks, encryption or snapshots.
 *
 * Keys are relative paths made of `[a-z0-9._-]` segments joined by `/` (e.g.
 * `chunks/ab/ab12…`). Contract, per method:
 * - `put(key, data)`: atomic — afterwards readers see either the whole new object or, if it
 *   failed, whatever was there before (never a partial object). Idempotent for the same
 *   bytes. Safe to call concurrently from several processes and hosts, also for the same key.
 *   Visible to every reader when it resolves; durable (it survives a power loss) once a later
 *   `sync()` resolves. Throws `E_NO_SPACE` when the storage is full, `E_BACKEND_IO` otherwise.
 * - `sync()`: every put that resolved before the call is durable when it resolves. A no-op
 *   where puts are durable on their own (S3). Callers sync before they write an object that
 *   refers to others (a manifest) and after writing it.
 * - `get(key)`: the whole object. Throws `E_MISSING_OBJECT` if absent.
 * - `has(key)`: existence, without reading the object.
 * - `delete(key)`: removes; deleting an absent key is not an error (idempotent).
 * - `list(prefix)`: every key starting with `prefix` with its size, in NO particular order
 *   (callers must not rely on any). Objects put or deleted during the listing may or may not
 *   appear.
 * Nothing here offers rename, append, locks or listing order: S3 has none of them.
 */
export interface Backend {
  /** Where the repository lives, for messages (a path or a URL, never a secret). */
  readonly location: string;
  put(key: string, data: Uint8Array): Promise<void>;
  sync(): Promise<void>;
  get(key: string): Promise<Buffer>;
  has(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  list(prefix: string): AsyncIterable<BackendEntry>;
}

/** One object found by {@link Backend.list}. */
export interface BackendEntry {
  key: string;
  size: number;
}
