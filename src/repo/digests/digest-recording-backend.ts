import { createHash } from 'node:crypto';
import type { Backend } from '../backend/backend.js';
import { ForwardingBackend } from '../backend/forwarding-backend.js';
import { sha256Of } from '../backend/known-sha256.js';
import { encodeDigestKey } from '../format/digest-key.js';
import { encodeDigestRecordBody, MAX_DIGEST_ENTRIES, type DigestEntry } from '../format/digest-record.js';
import type { SigningKey } from '../keys/signing-key.js';
import { DIGEST_KEY_KEY, digestRecordKey, SNAPSHOTS_PREFIX } from '../layout.js';
import { isCoveredKey } from './covered-keys.js';

/** Options of {@link DigestRecordingBackend}. */
export interface DigestRecordingOptions {
  /** The clock for records' times (default: the system's). */
  now?: () => Date;
  /** Entries that make a record written at once (default and maximum {@link MAX_DIGEST_ENTRIES}). */
  maxEntries?: number;
}

/**
 * A backend wrapper, used whenever a key holder opens a repository, that records the SHA-256
 * and length of every object it puts and every object it deletes, and writes them as signed
 * digest records (`digests/<id>`, format/digest-record.ts) so that `coffer verify --stored`
 * can check the stored bytes without the master key.
 *
 * When a record is written (one put, then the caller's sync makes it durable):
 * - before a manifest (`snapshots/…`) is put: a snapshot therefore never exists before the
 *   digests of the chunks and pages it names were written by its backup (or sync, or tape
 *   import);
 * - on every `sync()` (before syncing), so what is durable is recorded;
 * - when {@link DigestRecordingOptions.maxEntries} entries are waiting (bounded memory);
 * - on {@link flush} (Repository.close calls it): notes, markers, prune's deletions.
 * Only puts and deletes that succeeded are recorded, so a record never claims an object that
 * was not written; a process killed before a record leaves its last objects *not covered*
 * (reported as such, never as damaged). The manifest itself is recorded by the record after
 * it (saveSnapshot syncs right after the put).
 *
 * Hashing runs on the calling (main) thread: about 0.8 s per GiB stored on this project's CI
 * machine, small beside compression, which runs on the workers.
 *
 * Concurrency: puts and deletes may run concurrently; records are written one at a time.
 * A key written twice before a flush is recorded once, as its last state.
 */
export class DigestRecordingBackend extends ForwardingBackend {
  private pending = new Map<string, DigestEntry>();
  private writing: Promise<void> = Promise.resolve();
  private keyStored = false;
  /** The time of the last record written: each is later, so the replay order is the writing order. */
  private lastTimeMs = 0;
  private readonly now: () => Date;
  private readonly maxEntries: number;

  constructor(
    inner: Backend,
    private readonly signer: SigningKey,
    options: DigestRecordingOptions = {},
  ) {
    super(inner);
    this.now = options.now ?? (() => new Date());
    this.maxEntries = Math.min(MAX_DIGEST_ENTRIES, Math.max(1, options.maxEntries ?? MAX_DIGEST_ENTRIES));
  }

  /** The fingerprint of the key that signs this backend's records. */
  get fingerprint(): string {
    return this.signer.fingerprint;
  }

  /** The raw public key that signs this backend's records. */
  get publicKey(): Buffer {
    return this.signer.publicKey;
  }

  /**
   * Records an object that is already stored, as these bytes, without writing it: for objects
   * written before stored digests existed, once the key holder has authenticated them
   * (cover-stored.ts). Recorded at the next flush like any put.
   */
  async vouch(key: string, data: Uint8Array): Promise<void> {
    if (!isCoveredKey(key)) return;
    await this.add({ op: 'stored', key, length: data.length, sha256: createHash('sha256').update(data).digest() });
  }

  override async put(key: string, data: Uint8Array): Promise<void> {
    if (!isCoveredKey(key)) return this.inner.put(key, data);
    // Recorded before the manifest exists: what it names is covered first.
    if (key.startsWith(SNAPSHOTS_PREFIX)) await this.flush();
    const sha256 = sha256Of(data); // a pack's own name: hashed once, by its writer
    await this.inner.put(key, data);
    await this.add({ op: 'stored', key, length: data.length, sha256 });
  }

  override async create(key: string, data: Uint8Array): Promise<boolean> {
    if (!isCoveredKey(key)) return this.inner.create(key, data);
    const created = await this.inner.create(key, data);
    if (created) await this.add({ op: 'stored', key, length: data.length, sha256: sha256Of(data) });
    return created;
  }

  override async delete(key: string): Promise<void> {
    await this.inner.delete(key);
    if (isCoveredKey(key)) await this.add({ op: 'deleted', key });
  }

  override async sync(): Promise<void> {
    await this.flush();
    await this.inner.sync();
  }

  /**
   * Writes what is waiting as signed records (none when nothing is); true when it wrote one.
   * Not synced: the caller syncs.
   */
  flush(): Promise<boolean> {
    const next = this.writing.then(() => this.writeRecords());
    this.writing = next.then(() => undefined, () => undefined);
    return next;
  }

  private async add(entry: DigestEntry): Promise<void> {
    this.pending.delete(entry.key); // keep the newest state last
    this.pending.set(entry.key, entry);
    if (this.pending.size >= this.maxEntries) await this.flush();
  }

  private async writeRecords(): Promise<boolean> {
    if (this.pending.size === 0) return false;
    const entries = [...this.pending.values()].slice(0, this.maxEntries);
    for (const entry of entries) this.pending.delete(entry.key);
    try {
      if (!this.keyStored) {
        // Derived, so every key holder stores the same bytes: writing it twice is harmless.
        if (!(await this.inner.has(DIGEST_KEY_KEY))) await this.inner.put(DIGEST_KEY_KEY, encodeDigestKey(this.signer.publicKey));
        this.keyStored = true;
      }
      const timeMs = Math.max(this.now().getTime(), this.lastTimeMs + 1);
      const body = encodeDigestRecordBody(timeMs, this.signer.publicKey, entries);
      const record = Buffer.concat([body, this.signer.sign(body)]);
      await this.inner.put(digestRecordKey(createHash('sha256').update(record).digest('hex')), record);
      this.lastTimeMs = timeMs;
    } catch (error) {
      // Not written: keep the entries for the next record (unless newer ones replaced them).
      for (const entry of entries) if (!this.pending.has(entry.key)) this.pending.set(entry.key, entry);
      throw error;
    }
    if (this.pending.size >= this.maxEntries) await this.writeRecords();
    return true;
  }
}

/**
 * The digest recorder of a repository's backend, whatever wrappers lie above it (each wrapper
 * exposes the backend it wraps as `inner`), or undefined when nothing records (an
 * unencrypted repository).
 */
export function digestRecorderOf(repo: { backend: Backend }): DigestRecordingBackend | undefined {
  let backend: Backend | undefined = repo.backend;
  for (let depth = 0; backend !== undefined && depth < 16; depth++) {
    if (backend instanceof DigestRecordingBackend) return backend;
    backend = (backend as { inner?: Backend }).inner;
  }
  return undefined;
}
