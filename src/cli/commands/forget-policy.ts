import { CofferError, isCofferError } from '../../errors/index.js';
import {
  applyRetention,
  deleteSnapshot,
  listRetentionCandidates,
  type Repository,
  type RetentionGroup,
  type RetentionPolicy,
  type SnapshotCandidate,
} from '../../repo/index.js';
import type { CommandContext } from '../context.js';
import { formatTable } from '../format.js';
import { describePolicy, policyJson } from './retention-options.js';

type Candidate = SnapshotCandidate;

/**
 * `coffer forget --keep-…`: applies a retention policy to every VM (or one, `--vm`), prints
 * each VM's snapshots with what keeps them, and removes the others unless `dryRun`. Protected
 * snapshots are kept whatever the policy says.
 */
export async function forgetByPolicy(
  repo: Repository,
  policy: RetentionPolicy,
  options: { vm?: string | undefined; dryRun: boolean; json: boolean; /** A prune runs right after (`--prune`): the closing line says so, not that the data waits for one. */ pruneFollows?: boolean },
  context: CommandContext,
): Promise<number> {
  const candidates = await listRetentionCandidates(repo, {
    vm: options.vm,
    onDamaged: (id) => void context.stderr.write(`warning: snapshot ${id.slice(0, 8)} has a damaged manifest and is left alone; run 'coffer verify'\n`),
    onTagsUnreadable: (id) => void context.stderr.write(`warning: a tag record of snapshot ${id.slice(0, 8)} does not open: its tags are unknown, so a tag rule keeps it; run 'coffer verify'\n`),
  });
  if (options.vm !== undefined && candidates.length === 0) {
    throw new CofferError('E_SNAPSHOT_NOT_FOUND', `no snapshot of VM ${options.vm} in ${repo.location}`, { subject: { repository: repo.location } });
  }
  const groups = applyRetention(candidates, policy);

  const removed: Candidate[] = [];
  for (const group of groups) {
    for (const decision of group.decisions) {
      if (decision.keep) continue;
      if (!options.dryRun) {
        try {
          await deleteSnapshot(repo, decision.snapshot.id);
        } catch (error) {
          // Protected by someone else since the listing, or still under Object Lock: kept, and said so.
          if (isCofferError(error, 'E_SNAPSHOT_LOCKED')) {
            decision.keep = true;
            decision.reasons.push('locked');
            continue;
          }
          if (!isCofferError(error, 'E_SNAPSHOT_PROTECTED')) throw error;
          decision.keep = true;
          decision.reasons.push('protected');
          continue;
        }
      }
      removed.push(decision.snapshot);
    }
  }
  const kept = candidates.length - removed.length;

  if (options.json) {
    context.stdout.write(`${JSON.stringify({
      dryRun: options.dryRun,
      policy: policyJson(policy),
      vms: groups.map((group) => ({ vm: group.vm, ...(group.files === undefined ? {} : { files: group.files }), snapshots: group.decisions.map(decisionJson) })),
      kept,
      removed: removed.map((s) => ({ id: s.id, vm: s.vm, time: new Date(s.time).toISOString() })),
    })}\n`);
    return 0;
  }
  context.stdout.write(`${describePolicy(policy)} (periods in UTC)\n`);
  for (const group of groups) context.stdout.write(renderGroup(group, options.dryRun));
  const verb = options.dryRun ? 'would remove' : 'removed';
  context.stdout.write(
    `\n${options.dryRun ? 'dry run: ' : ''}${verb} ${removed.length} snapshot(s), kept ${kept}, in ${new Set(groups.map((group) => group.vm)).size} VM(s)` +
      `${removed.length === 0 ? '' : options.pruneFollows === true ? '; the prune below removes their data' : '; their data stays in the repository until a prune'}\n`,
  );
  return 0;
}

function decisionJson(decision: RetentionGroup<Candidate>['decisions'][number]): Record<string, unknown> {
  const s = decision.snapshot;
  return { id: s.id, shortId: s.id.slice(0, 8), time: new Date(s.time).toISOString(), tags: s.tags, protected: s.protected, keep: decision.keep, reasons: decision.reasons };
}

function renderGroup(group: RetentionGroup<Candidate>, dryRun: boolean): string {
  const keep = group.decisions.filter((d) => d.keep).length;
  const remove = group.decisions.length - keep;
  const rows = [['Action', 'ID', 'Time (UTC)', 'Tags', 'Kept because']];
  for (const d of group.decisions) {
    const time = new Date(d.snapshot.time).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    rows.push([d.keep ? 'keep' : dryRun ? 'would remove' : 'remove', d.snapshot.id.slice(0, 8), time, d.snapshot.tags.join(','), d.reasons.join(', ')]);
  }
  const table = formatTable(rows).split('\n').map((line) => `  ${line.trimEnd()}`).join('\n');
  return `\nvm ${group.vm}${groupFiles(group)}: ${group.decisions.length} snapshot(s), keep ${keep}, ${dryRun ? 'would remove' : 'remove'} ${remove}\n${table}\n`;
}

/** `, files /etc /home` or `, files: stdin db.sql` for a group of file snapshots; nothing for disks. */
function groupFiles(group: RetentionGroup<Candidate>): string {
  if (group.files === undefined) return '';
  return group.files.stdinName !== undefined ? `, files: stdin ${group.files.stdinName}` : `, files ${group.files.paths.join(' ')}`;
}
