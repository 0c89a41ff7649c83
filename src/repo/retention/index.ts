/**
 * Retention: which snapshots a policy keeps (restic's `--keep-*` semantics, per VM, in UTC,
 * protected snapshots always kept) and why. Pure functions over snapshot summaries, used by
 * `coffer forget` and by anything that applies policies on a schedule. The rules are in
 * docs/retention.md.
 */
export { applyRetention, type RetentionCandidate, type RetentionDecision, type RetentionGroup } from './apply-retention.js';
export { RETENTION_PERIODS, isoWeek, periodLabel, type RetentionPeriod } from './periods.js';
export {
  UNLIMITED,
  parseKeepCount,
  parseRetentionDuration,
  policyKeepsSomething,
  subtractDuration,
  validatePolicy,
  type KeepCount,
  type RetentionDuration,
  type RetentionPolicy,
} from './policy.js';
