import { CofferError } from '../../errors/index.js';
import { describeLock, extendLocks, lockStatus } from '../../repo/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { ExitCode } from '../exit-codes.js';

/**
 * `coffer lock status`: the repository's Object Lock policy and each snapshot's lock-until.
 * `coffer lock extend`: makes everything each still-locked snapshot needs stay locked as long
 * as it (reading every retention from the bucket, so it repairs one shortened behind
 * Coffer's back); reports the counts.
 */
export async function lockCommand(action: string, options: RepositoryOptions, context: CommandContext): Promise<number> {
  if (action !== 'status' && action !== 'extend') throw new CofferError('E_USAGE', `lock ${action}: give status or extend`);
  return withRepository(options, context, async (repo) => {
    const now = new Date();
    if (action === 'status') {
      const status = await lockStatus(repo);
      if (options.json) {
        context.stdout.write(`${JSON.stringify({
          policy: status.policy,
          snapshots: status.snapshots.map(({ snapshot, lockedUntil }) => ({ id: snapshot.id, vm: snapshot.vm, time: snapshot.time, lockedUntil: lockedUntil?.toISOString() ?? null, locked: lockedUntil !== null && lockedUntil > now })),
        })}\n`);
        return 0;
      }
      const lines = [`Object Lock: ${describeLock(status.policy)}`];
      for (const { snapshot, lockedUntil } of status.snapshots) {
        const state = lockedUntil === null ? 'not locked' : lockedUntil > now ? `locked until ${lockedUntil.toISOString()}` : `lock ended ${lockedUntil.toISOString()}`;
        lines.push(`${snapshot.id.slice(0, 8)}  ${snapshot.vm}  ${snapshot.time}  ${state}`);
      }
      context.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    }
    const report = await extendLocks(repo, { now });
    if (options.json) context.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      context.stdout.write(
        `${report.lockedSnapshots} snapshot(s) still locked (${report.unlockedSnapshots} no longer): ${report.checked} object(s) checked, ${report.extended} extended` +
          `${report.missing > 0 ? `, ${report.missing} missing (run 'coffer verify')` : ''}\n`,
      );
    }
    // Missing objects are damage, as verify would say: a script must not read success.
    return report.missing > 0 ? ExitCode.verifyFailed : 0;
  });
}
