import { CofferError } from '../../errors/index.js';
import type { ObjectLockPolicy } from '../format/config.js';
import { snapshotKey } from '../layout.js';
import type { Repository } from '../repository.js';
import { listSnapshots, type Snapshot } from '../snapshots.js';
import { RetentionEnsurer, type RetentionReport } from './ensure-retention.js';
import { lockedBackendOf, type LockedBackend } from './locked-backend.js';

/** A snapshot with the retain-until of its manifest (null: not locked, e.g. written before the lock). */
export interface SnapshotLock {
  snapshot: Snapshot;
  lockedUntil: Date | null;
}

/** The policy and, per snapshot (oldest first), its lock-until. */
export interface LockStatus {
  policy: ObjectLockPolicy;
  snapshots: SnapshotLock[];
}

/** What `extendLocks` did. */
export interface LockExtendReport extends RetentionReport {
  /** Snapshots still within their lock, whose objects were checked. */
  lockedSnapshots: number;
  /** Snapshots whose lock has ended (nothing to keep for them). */
  unlockedSnapshots: number;
}

/** The repository's lock, or `E_USAGE` when it has none. */
export function requireLock(repo: Repository): LockedBackend {
  const lock = lockedBackendOf(repo);
  if (lock === undefined) {
    throw new CofferError('E_USAGE', `${repo.location} has no Object Lock policy (it is set by 'coffer init --lock-days N' on a bucket with Object Lock)`, { subject: { repository: repo.location } });
  }
  return lock;
}

/** The lock-until of a snapshot: its manifest's retain-until, read from the store. */
export async function snapshotLockedUntil(lock: LockedBackend, id: string): Promise<Date | null> {
  return (await lock.retention(snapshotKey(id)))?.until ?? null;
}

/** The policy and every snapshot's lock-until (one HEAD per snapshot). */
export async function lockStatus(repo: Repository): Promise<LockStatus> {
  const lock = requireLock(repo);
  const snapshots = await listSnapshots(repo);
  const result: SnapshotLock[] = [];
  for (const snapshot of snapshots) result.push({ snapshot, lockedUntil: await snapshotLockedUntil(lock, snapshot.id) });
  return { policy: lock.policy, snapshots: result };
}

/**
 * Maintenance (`coffer lock extend`): every snapshot still within its lock gets everything
 * it references — index pages, chunks, and the config and key files — locked at least as
 * long as itself. Reads each object's retention from the store (never the cache), so it also
 * repairs a retention shortened behind Coffer's back (a GOVERNANCE bypass). Snapshots are
 * taken latest lock first, so an object shared by many is extended once, to the latest date.
 * Objects are extended to exactly the date needed.
 */
export async function extendLocks(repo: Repository, options: { now?: Date } = {}): Promise<LockExtendReport> {
  const lock = requireLock(repo);
  const now = (options.now ?? lock.now()).getTime();
  const ensurer = new RetentionEnsurer(lock, { trustCache: false, target: (required) => required });
  const locks = (await lockStatus(repo)).snapshots;
  const live = locks.filter((s): s is SnapshotLock & { lockedUntil: Date } => s.lockedUntil !== null && s.lockedUntil.getTime() > now);
  live.sort((a, b) => b.lockedUntil.getTime() - a.lockedUntil.getTime());
  const latest = live[0];
  if (latest !== undefined) await ensurer.requireConfigAndKeys(repo, latest.lockedUntil);
  // Missing or damaged index pages and chunks are counted (or skipped) there: verify's to report.
  for (const { snapshot, lockedUntil } of live) {
    await ensurer.requireDisks(repo, snapshot.disks, lockedUntil);
    if (snapshot.files !== undefined) await ensurer.requireFileTree(repo, snapshot.files.tree, lockedUntil);
  }
  await lock.cache.save(new Date(now));
  return { ...ensurer.report, lockedSnapshots: live.length, unlockedSnapshots: locks.length - live.length };
}
