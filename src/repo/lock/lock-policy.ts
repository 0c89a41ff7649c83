import type { Retention } from '../backend/backend.js';
import type { ObjectLockPolicy } from '../format/config.js';

const DAY_MS = 86_400_000;

/**
 * The arithmetic of a repository's Object Lock policy (docs/s3.md, "Immutable backups"),
 * with no I/O and no clock of its own.
 *
 * - A snapshot is locked `days` from when its manifest is written: its lock-until.
 * - Everything a snapshot needs (chunks, index pages, config, keys) must stay locked at least
 *   until that date, so that while the manifest cannot be deleted, nothing it needs can.
 * - Objects are written, and extended, to `days × (1 + SLACK)` from now: a chunk that a later
 *   backup reuses then still reaches that backup's lock-until for the next `days × SLACK`,
 *   so most backups extend nothing, and one that does extends a chunk for many backups to
 *   come. The cost: garbage stays `days × SLACK` longer before prune can delete it.
 *   SLACK = 0.5 is the step the issue suggested; with daily backups and a 30-day lock, a chunk
 *   reused every day is extended once every 15 days instead of every day.
 */
export const LOCK_SLACK = 0.5;

/** The lock-until of a snapshot whose manifest is written at `now`. */
export function snapshotLockUntil(policy: ObjectLockPolicy, now: Date): Date {
  return new Date(now.getTime() + policy.days * DAY_MS);
}

/** The retention a new or extended object gets at `now`: `days × (1 + LOCK_SLACK)` ahead. */
export function writeRetention(policy: ObjectLockPolicy, now: Date): Retention {
  return retentionUntil(policy, new Date(now.getTime() + policy.days * (1 + LOCK_SLACK) * DAY_MS));
}

/** A retention in the policy's mode until `until`. */
export function retentionUntil(policy: ObjectLockPolicy, until: Date): Retention {
  return { mode: policy.mode === 'compliance' ? 'COMPLIANCE' : 'GOVERNANCE', until };
}

/** `--lock-days` as typed: a positive number of days, fractions allowed. */
export function describeLock(policy: ObjectLockPolicy): string {
  return `${policy.mode}, ${policy.days} day(s) per snapshot`;
}
