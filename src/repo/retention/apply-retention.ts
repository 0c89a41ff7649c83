import { CofferError } from '../../errors/index.js';
import { RETENTION_PERIODS, periodLabel } from './periods.js';
import { periodCount, subtractDuration, validatePolicy, type RetentionPolicy } from './policy.js';

/** What the policy needs to know of a snapshot. */
export interface RetentionCandidate {
  id: string;
  vm: string;
  /** ISO 8601, the capture time. */
  time: string;
  tags: readonly string[];
  /** Protected snapshots are always kept and count for no rule (see {@link applyRetention}). */
  protected: boolean;
  /** A file snapshot's paths (`backup --files`) or stream (`--stdin`); absent for disks. */
  files?: { readonly paths: readonly string[]; readonly stdinName?: string | undefined } | undefined;
  /**
   * A tag record of it does not open (repo/snapshot-tags.ts): its tags may not be `tags`. A
   * policy with tag rules keeps it (`tags unreadable`): the record may hold the tag that
   * keeps it (a legal hold), and a hold must not vanish with a damaged object.
   */
  tagsUnreadable?: boolean;
}

/** The fate of one snapshot: kept, with every reason that keeps it, or removed (no reasons). */
export interface RetentionDecision<S extends RetentionCandidate> {
  snapshot: S;
  keep: boolean;
  /**
   * Why it is kept, in this order: `protected`, `newest`, `last N` (its rank among the newest),
   * `hourly 2026-11-24T13`, `daily 2026-11-24`, `weekly 2026-W48`, `monthly 2026-11`,
   * `yearly 2026` (a period label gets ` (oldest)` when the snapshot is kept only because it
   * is the oldest and the rule still had periods to fill), `within 7d`, `tag a,b`, `tags
   * unreadable` (a tag rule, and a tag record of it that does not open).
   */
  reasons: string[];
}

/**
 * The decisions for one VM's disk snapshots, or for one set of its file snapshots (the same
 * paths, or the same stream), oldest snapshot first.
 */
export interface RetentionGroup<S extends RetentionCandidate> {
  vm: string;
  /** The file snapshots' paths (sorted) or stream; absent for the VM's disk snapshots. */
  files?: { paths: string[]; stdinName?: string };
  decisions: RetentionDecision<S>[];
}

/**
 * Applies a retention policy to snapshots, each group on its own: a VM's disk snapshots, and
 * apart from them each set of file snapshots recorded under its name with the same paths (or
 * the same standard-input stream), as a file backup finds its parent. One group for all
 * (before 2026-11-30) let file backups under a VM's name count for `last` and the periods
 * and push out its disk snapshots: with a nightly file backup after the disk backup,
 * `--keep-daily 7` kept no disk snapshot at all. Pure: no clock (durations
 * count back from each VM's newest snapshot, not from now), no I/O, UTC periods (periods.ts).
 *
 * Semantics (restic's `forget --keep-*`, docs/retention.md):
 * - Snapshots are ordered by time, then by id, so ties (the same millisecond) are ordered the
 *   same way everywhere: of two snapshots at the same instant, the greater id counts as newer.
 * - `last N` keeps the N newest. `hourly N` (daily, weekly, monthly, yearly) walks from the
 *   newest snapshot backwards and keeps the newest snapshot of each period until N periods
 *   that have snapshots are kept; periods without snapshots do not count. When the rule has
 *   periods left to fill when the walk reaches the oldest snapshot, that one is kept too
 *   (as restic 0.17 and later do: the longest history the counts allow). -1 is unlimited.
 * - `within D` keeps snapshots strictly newer than the VM's newest snapshot minus D.
 * - `tags` keeps every snapshot that has all the tags of one of the lists.
 * - Protected snapshots are always kept and are left out of `last` and the periods (they
 *   use up no count, as Proxmox Backup Server does), so the policy keeps as many
 *   unprotected snapshots as it would without them.
 * - The newest snapshot of each VM is always kept (unlike restic, where a `--keep-tag`-only
 *   policy can remove it): it is the parent the next incremental backup builds on.
 * Throws `E_USAGE` for a policy that keeps nothing (validatePolicy).
 */
export function applyRetention<S extends RetentionCandidate>(snapshots: readonly S[], policy: RetentionPolicy): RetentionGroup<S>[] {
  validatePolicy(policy);
  const groups = new Map<string, { vm: string; files?: { paths: string[]; stdinName?: string }; members: S[] }>();
  for (const snapshot of snapshots) {
    const files = snapshot.files === undefined ? undefined : { paths: [...snapshot.files.paths].sort(), ...(snapshot.files.stdinName === undefined ? {} : { stdinName: snapshot.files.stdinName }) };
    // Disk snapshots sort first among a VM's groups ('0' before '1').
    const key = JSON.stringify([snapshot.vm, files === undefined ? 0 : 1, files?.paths ?? [], files?.stdinName ?? '']);
    const group = groups.get(key) ?? { vm: snapshot.vm, ...(files === undefined ? {} : { files }), members: [] };
    group.members.push(snapshot);
    groups.set(key, group);
  }
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...groups.entries()]
    .sort(([keyA, a], [keyB, b]) => byName(a.vm, b.vm) || byName(keyA, keyB))
    .map(([, { members, ...group }]) => ({ ...group, decisions: decideGroup(members, policy) }));
}

function decideGroup<S extends RetentionCandidate>(group: readonly S[], policy: RetentionPolicy): RetentionDecision<S>[] {
  const timed = group.map((snapshot) => ({ snapshot, ms: Date.parse(snapshot.time) }));
  for (const { snapshot, ms } of timed) {
    if (Number.isNaN(ms)) throw new CofferError('E_USAGE', `snapshot ${snapshot.id} has no valid time (${JSON.stringify(snapshot.time)})`, { subject: { snapshot: snapshot.id } });
  }
  timed.sort((a, b) => a.ms - b.ms || (a.snapshot.id < b.snapshot.id ? -1 : a.snapshot.id > b.snapshot.id ? 1 : 0));
  const newestFirst = timed.slice().reverse();
  const newest = newestFirst[0];
  if (newest === undefined) return [];
  const oldestUnprotected = timed.find((t) => !t.snapshot.protected);
  const withinAfter = policy.within === undefined ? undefined : subtractDuration(newest.ms, policy.within);

  let lastLeft = policy.last ?? 0;
  let lastRank = 0;
  const periods = RETENTION_PERIODS.map((period) => ({ period, left: periodCount(policy, period), label: undefined as string | undefined }));
  const decisions = new Map<S, RetentionDecision<S>>();

  for (const { snapshot, ms } of newestFirst) {
    const reasons: string[] = [];
    if (snapshot.protected) reasons.push('protected');
    if (snapshot === newest.snapshot) reasons.push('newest');
    if (!snapshot.protected) {
      if (lastLeft !== 0) {
        lastRank += 1;
        reasons.push(`last ${lastRank}`);
        if (lastLeft > 0) lastLeft -= 1;
      }
      for (const rule of periods) {
        if (rule.left === 0) continue;
        const label = periodLabel(rule.period, ms);
        const isOldest = snapshot === oldestUnprotected?.snapshot;
        if (label === rule.label && !isOldest) continue;
        reasons.push(label === rule.label ? `${rule.period} ${label} (oldest)` : `${rule.period} ${label}`);
        rule.label = label;
        if (rule.left > 0) rule.left -= 1;
      }
    }
    if (withinAfter !== undefined && policy.within !== undefined && ms > withinAfter) reasons.push(`within ${policy.within.text}`);
    for (const list of policy.tags ?? []) {
      if (list.every((tag) => snapshot.tags.includes(tag))) reasons.push(`tag ${list.join(',')}`);
    }
    if (snapshot.tagsUnreadable === true && (policy.tags ?? []).length > 0) reasons.push('tags unreadable');
    decisions.set(snapshot, { snapshot, keep: reasons.length > 0, reasons });
  }
  return timed.map((t) => decisions.get(t.snapshot) as RetentionDecision<S>);
}
