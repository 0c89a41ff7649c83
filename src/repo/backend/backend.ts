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
 * - `create(key, data)`: a put that happens only if the key is absent: true when the key now
 *   holds `data` (written by this call, or the very same bytes found there: a retry whose
 *   first attempt wrote them), false when it holds other bytes (nothing written). Of
 *   concurrent creates of one key with different bytes, from any processes and hosts, at most
 *   one answers true (local: link(2), which fails on an existing name; S3: `If-None-Match: *`;
 *   the repository server: the same, under its per-key lock). For the rare objects two
 *   writers must never both write: a new repository's config (two `coffer init` on one place
 *   at once must not leave a repository split between two master keys). Errors as for put.
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
  create(key: string, data: Uint8Array): Promise<boolean>;
  sync(): Promise<void>;
  get(key: string): Promise<Buffer>;
  has(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  list(prefix: string): AsyncIterable<BackendEntry>;
  /**
   * `length` bytes of the object from `offset` (a pack's frame, format 2): one ranged read
   * (local: pread; S3 and the repository server: a Range request). Throws `E_MISSING_OBJECT`
   * if absent, `E_CORRUPT_OBJECT` if the object is shorter than `offset + length`. Optional:
   * callers use {@link readRange}, which falls back to a whole `get`. Wrappers pass it on.
   * With `into` (at least `length` bytes, often shared memory a reader reuses), a backend that
   * can read straight into it (local: the pread) does, and answers a view of it; one that
   * cannot answers its own buffer ({@link readRange} then copies).
   */
  getRange?(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer>;
  /**
   * Releases what the backend keeps open between calls (a local directory: the file handles
   * of its ranged reads). The backend stays usable: later calls open what they need again.
   * Idempotent. Optional; the repository's `close()` calls it. Wrappers pass it on.
   */
  close?(): Promise<void>;
  /**
   * Present only on storage that can make objects immutable for a time (S3 Object Lock);
   * absent on a local directory.
   */
  readonly objectLock?: ObjectLockStore;
  /**
   * How many requests this storage serves best at once, when more than a reader would keep in
   * flight for its CPU alone: a remote store (S3, a repository server) answers each request
   * after a round trip, so a restore reads further ahead from it than from a local disk.
   * Absent on local storage. A hint: callers still bound their memory (restore-disk.ts).
   * Wrappers pass their inner backend's on.
   */
  readonly preferredConcurrency?: number;
  /**
   * True on storage of a fixed size that backups can fill to the last block (a local folder):
   * the repository keeps a space reserve there for prune (space-reserve.ts). Absent on an
   * object store and on a repository server (whose own folder is the server's business).
   * Wrappers pass it on.
   */
  readonly fillsUp?: boolean;
  /**
   * Storage whose writes leave a temporary file when a process dies mid-write (a local
   * folder: `.tmp-…` beside the object, then renamed): deletes those that its listings since
   * the last call came across and that are older than `olderThanMs` (a write that old is not
   * under way), and says how many and their bytes. Listings never return them, so only prune,
   * which lists the whole repository under its lease, calls this. Absent where a write is
   * atomic (an object store). Wrappers pass it on.
   */
  removeStaleTemporaries?(olderThanMs: number): Promise<{ files: number; bytes: number }>;
}

/** How an object is held: COMPLIANCE (nobody can shorten or delete) or GOVERNANCE (a user with the bypass right can). */
export type RetentionMode = 'COMPLIANCE' | 'GOVERNANCE';

/** An object's retention: it cannot be deleted or overwritten in place before `until`. */
export interface Retention {
  mode: RetentionMode;
  until: Date;
}

/**
 * The Object Lock capability of a {@link Backend} (docs/s3.md, "Immutable backups"). The
 * store keeps every version of an object; a locked version cannot be deleted before its
 * retain-until date. Contract, per method:
 * - `enabled()`: whether the bucket has Object Lock on (only then may the others be used).
 * - `put(key, data, retention)`: like {@link Backend.put}, the new version locked until
 *   `retention.until` (which must lie in the future).
 * - `create(key, data, retention)`: like {@link Backend.create}, the new object locked.
 * - `retention(key)`: the retention of the key's current version (null when it has none);
 *   `E_MISSING_OBJECT` when the key is absent. Read from the store, never from a cache.
 * - `extend(key, retention)`: sets the current version's retain-until to `retention.until`,
 *   which must not be earlier than what it has (the store refuses to shorten:
 *   `E_OBJECT_LOCKED`). Idempotent.
 * - `deleteAll(key)`: deletes every version of the key (never a mere delete marker, which
 *   would hide a locked version without freeing it). `E_OBJECT_LOCKED` when a version is
 *   still locked (the others are deleted). Absent keys are not an error.
 * All may run concurrently; errors as for {@link Backend}.
 */
export interface ObjectLockStore {
  enabled(): Promise<boolean>;
  put(key: string, data: Uint8Array, retention: Retention): Promise<void>;
  create(key: string, data: Uint8Array, retention: Retention): Promise<boolean>;
  retention(key: string): Promise<Retention | null>;
  extend(key: string, retention: Retention): Promise<void>;
  deleteAll(key: string): Promise<void>;
}

/** One object found by {@link Backend.list}. */
export interface BackendEntry {
  key: string;
  size: number;
}
