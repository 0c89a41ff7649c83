import { CofferError } from '../../errors/index.js';
import type { Backend, ObjectLockStore, Retention } from '../backend/backend.js';
import { ForwardingBackend } from '../backend/forwarding-backend.js';
import type { ObjectLockPolicy } from '../format/config.js';
import { CHUNKS_PREFIX, CONFIG_KEY, INDEXES_PREFIX, KEYS_PREFIX, PACKS_PREFIX, SEGMENTS_PREFIX, SNAPSHOTS_PREFIX, TREES_PREFIX } from '../layout.js';
import { retentionUntil, writeRetention } from './lock-policy.js';
import type { RetentionReport } from './ensure-retention.js';
import { RetentionCache } from './retention-cache.js';
import { digestRecorderOf } from '../digests/digest-recording-backend.js';

/**
 * The objects a restore needs, which Object Lock makes immutable: config, key files, chunks,
 * index pages and manifests, and in format 2 packs and index segments (a segment is what a
 * later backup deduplicates against and what a read falls back on; `repair --index` could
 * rebuild it, but an attacker deleting it would still cost that). The rest (notes, protection markers, verification records,
 * leases, the deletions token, quarantine) is bookkeeping that Coffer rewrites and deletes
 * as it works; it is written unlocked.
 */
export function isLockedKey(key: string): boolean {
  return key === CONFIG_KEY || [KEYS_PREFIX, CHUNKS_PREFIX, INDEXES_PREFIX, TREES_PREFIX, SNAPSHOTS_PREFIX, PACKS_PREFIX, SEGMENTS_PREFIX].some((prefix) => key.startsWith(prefix));
}

/**
 * A backend wrapper for a repository with an Object Lock policy: a put of a lockable key
 * ({@link isLockedKey}) writes a version locked per {@link writeRetention}; every delete
 * removes all versions of the key (a plain DeleteObject on a versioned bucket only hides
 * the data behind a delete marker), and fails with `E_OBJECT_LOCKED` on a locked one.
 * Everything else passes through.
 */
export class LockedBackend extends ForwardingBackend {
  readonly objectLock: ObjectLockStore;
  /** What the last snapshot written through this backend took to lock (snapshots.ts). */
  lastSnapshot: (RetentionReport & { id: string; lockedUntil: Date; durationMs: number }) | undefined;

  constructor(
    inner: Backend,
    readonly policy: ObjectLockPolicy,
    /** The cache of known retentions (retention-cache.ts). */
    readonly cache: RetentionCache,
    /** The clock (injected: tests move it). */
    readonly now: () => Date = () => new Date(),
  ) {
    super(inner);
    const store = inner.objectLock;
    if (store === undefined) {
      throw new CofferError('E_USAGE', `${inner.location} is a repository with Object Lock (${policy.mode}, ${policy.days} days), but its storage offers no Object Lock`, {
        subject: { repository: inner.location },
      });
    }
    this.objectLock = store;
  }

  override async put(key: string, data: Uint8Array): Promise<void> {
    if (!isLockedKey(key)) return this.inner.put(key, data);
    const retention = writeRetention(this.policy, this.now());
    await this.objectLock.put(key, data, retention);
    this.cache.learn(key, retention.until);
  }

  override async create(key: string, data: Uint8Array): Promise<boolean> {
    if (!isLockedKey(key)) return this.inner.create(key, data);
    const retention = writeRetention(this.policy, this.now());
    const created = await this.objectLock.create(key, data, retention);
    if (created) this.cache.learn(key, retention.until);
    return created;
  }

  /** A put locked until exactly `until` (a manifest: its snapshot's lock-until). */
  async putUntil(key: string, data: Uint8Array, until: Date): Promise<void> {
    await this.objectLock.put(key, data, retentionUntil(this.policy, until));
  }

  /** The current version's retention, read from the store. */
  retention(key: string): Promise<Retention | null> {
    return this.objectLock.retention(key);
  }

  /** Moves the current version's retain-until to `until` (never earlier: the store refuses). */
  async extend(key: string, until: Date): Promise<void> {
    await this.objectLock.extend(key, retentionUntil(this.policy, until));
    this.cache.learn(key, until);
  }

  override delete(key: string): Promise<void> {
    return this.objectLock.deleteAll(key);
  }
}

/** The repository's backend as a {@link LockedBackend}, or undefined when it has no lock. */
export function lockedBackendOf(repo: { backend: Backend }): LockedBackend | undefined {
  // A key holder's digest recorder (docs/repository-format.md §18) sits above the lock.
  const backend = digestRecorderOf(repo)?.inner ?? repo.backend;
  return backend instanceof LockedBackend ? backend : undefined;
}
