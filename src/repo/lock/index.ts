/**
 * @module repo/lock
 * Immutable repositories on S3 Object Lock (docs/s3.md, "Immutable backups"): the policy's
 * arithmetic, the backend wrapper that writes what a restore needs locked and deletes
 * version by version, the local cache of known retentions, the pass that extends what a new
 * snapshot reuses, the maintenance that checks and extends every locked snapshot, and what a
 * deleter asks first (`lockedUntil`). Format 2: packs and segments are locked; a snapshot
 * locks the packs its index entries name.
 */
export { LOCK_SLACK, snapshotLockUntil, writeRetention, describeLock } from './lock-policy.js';
export { LockedBackend, lockedBackendOf, isLockedKey } from './locked-backend.js';
export { RetentionCache } from './retention-cache.js';
export { RetentionEnsurer, type RetentionReport } from './ensure-retention.js';
export { lockedUntil } from './locked-until.js';
export { lockStatus, extendLocks, requireLock, snapshotLockedUntil, type LockStatus, type SnapshotLock, type LockExtendReport } from './lock-maintenance.js';
