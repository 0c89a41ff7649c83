import { CofferError } from '../../errors/index.js';
import { deleteSnapshot, protectionOf, refuseLocked, resolveSnapshot, resolveSnapshotId, type Repository, type RetentionPolicy, type Snapshot } from '../../repo/index.js';
import { renderPrune, runPrune } from './prune.js';
import { withCapturedStdout, withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { forgetByPolicy } from './forget-policy.js';
import { policyFromOptions, type RetentionOptions } from './retention-options.js';

export interface ForgetOptions extends RepositoryOptions, RetentionOptions {
  /** With a policy: only this VM's snapshots. */
  vm?: string;
  /** Print what would be removed, remove nothing. */
  dryRun?: boolean;
  /** Then prune. */
  prune?: boolean;
}

/**
 * `coffer forget SNAPSHOT...` removes the snapshots named; `coffer forget --keep-…` removes
 * what a retention policy does not keep (forget-policy.ts). Never both at once. Protected
 * snapshots are never removed: naming one is an error (`E_SNAPSHOT_PROTECTED`) and nothing
 * is removed; `coffer unprotect` it first. Likewise a snapshot still under Object Lock
 * (`E_SNAPSHOT_LOCKED`, with the date). Their chunks stay until a prune removes what no
 * snapshot uses any more.
 */
export async function forgetCommand(references: string[], options: ForgetOptions, context: CommandContext): Promise<number> {
  const policy = policyFromOptions(options);
  if (policy !== null && references.length > 0) throw new CofferError('E_USAGE', 'name snapshots or give a policy (--keep-*), not both');
  if (policy === null && references.length === 0) {
    throw new CofferError('E_USAGE', 'name the snapshots to forget, or give a policy (--keep-last, --keep-daily, --keep-within, …)');
  }
  if (policy === null && options.vm !== undefined) throw new CofferError('E_USAGE', '--vm applies to a policy (--keep-*), not to snapshots named');
  const dryRun = options.dryRun === true;
  return withRepository(options, context, async (repo) => {
    if (options.prune === true && !dryRun) {
      // With --json the forget's document and the prune's report are printed as one.
      const json = options.json === true;
      const inner = json ? withCapturedStdout(context) : undefined;
      const code = await forgetOnly(repo, references, policy, options, dryRun, inner?.context ?? context);
      if (code !== 0) return code;
      const report = await runPrune(repo, { dryRun: false, waitMs: 30 * 60_000, json }, context);
      if (inner !== undefined) context.stdout.write(`${JSON.stringify({ ...(JSON.parse(inner.captured()) as object), prune: report })}\n`);
      else context.stdout.write(renderPrune(report));
      return 0;
    }
    return forgetOnly(repo, references, policy, options, dryRun, context);
  });
}

/** A snapshot named for removal: what its manifest says, or only its id when the manifest is damaged (vm and time null). */
interface Named {
  id: string;
  vm: string | null;
  time: string | null;
  damaged: boolean;
}

/**
 * The snapshot a reference names; one whose manifest cannot be read (corrupt, or gone between
 * the listing and the read) by its id alone: forgetting it by id is how an administrator clears
 * a damaged snapshot that blocks nothing else but clutters every verify.
 */
async function resolveForForget(repo: Repository, reference: string): Promise<Named> {
  try {
    const snapshot: Snapshot = await resolveSnapshot(repo, reference);
    return { id: snapshot.id, vm: snapshot.vm, time: snapshot.time, damaged: false };
  } catch (error) {
    if (!(error instanceof CofferError) || error.code !== 'E_CORRUPT_OBJECT' || reference.endsWith('latest')) throw error;
    return { id: await resolveSnapshotId(repo, reference), vm: null, time: null, damaged: true };
  }
}

async function forgetOnly(repo: Repository, references: string[], policy: RetentionPolicy | null, options: ForgetOptions, dryRun: boolean, context: CommandContext): Promise<number> {
  {
    if (policy !== null) return forgetByPolicy(repo, policy, { vm: options.vm, dryRun, json: options.json === true, pruneFollows: options.prune === true && !dryRun }, context);
    // Resolve and check all first: a typo or a protected snapshot in the third reference must not leave the first two forgotten.
    const snapshots = new Map<string, Named>();
    for (const reference of references) {
      const snapshot = await resolveForForget(repo, reference);
      snapshots.set(snapshot.id, snapshot);
    }
    for (const snapshot of snapshots.values()) {
      if ((await protectionOf(repo, snapshot.id)) !== null) {
        const short = snapshot.id.slice(0, 8);
        throw new CofferError('E_SNAPSHOT_PROTECTED', `snapshot ${short} (${snapshot.damaged ? 'its manifest is damaged' : `vm ${snapshot.vm}, ${snapshot.time}`}) is protected; run 'coffer unprotect ${short}' first; nothing was removed`, {
          subject: { repository: repo.location, snapshot: snapshot.id },
        });
      }
      await refuseLocked(repo, snapshot.id).catch((error: unknown) => {
        throw error instanceof CofferError ? new CofferError(error.code, `${error.message}; nothing was removed`, { subject: error.subject, cause: error }) : error;
      });
    }
    const removed = [];
    for (const snapshot of snapshots.values()) {
      if (!dryRun) await deleteSnapshot(repo, snapshot.id);
      removed.push({ id: snapshot.id, vm: snapshot.vm, time: snapshot.time, ...(snapshot.damaged ? { damaged: true } : {}) });
      if (!options.json) context.stdout.write(`${dryRun ? 'would remove' : 'removed'} snapshot ${snapshot.id.slice(0, 8)} (${snapshot.damaged ? 'its manifest is damaged' : `vm ${snapshot.vm}, ${snapshot.time}`})\n`);
    }
    if (options.json) context.stdout.write(`${JSON.stringify({ dryRun, removed })}\n`);
    return 0;
  }
}
