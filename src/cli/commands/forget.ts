import { CofferError } from '../../errors/index.js';
import { deleteSnapshot, resolveSnapshot, type Snapshot } from '../../repo/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';

/**
 * `coffer forget SNAPSHOT...`: removes snapshots. Their chunks stay until a prune removes
 * what no snapshot uses any more.
 */
export async function forgetCommand(references: string[], options: RepositoryOptions, context: CommandContext): Promise<number> {
  if (references.length === 0) throw new CofferError('E_USAGE', 'name the snapshots to forget');
  return withRepository(options, context, async (repo) => {
    // Resolve all first: a typo in the third id must not leave the first two forgotten.
    const snapshots: Snapshot[] = [];
    for (const reference of references) snapshots.push(await resolveSnapshot(repo, reference));
    const removed = [];
    for (const snapshot of new Map(snapshots.map((s) => [s.id, s])).values()) {
      await deleteSnapshot(repo, snapshot.id);
      removed.push({ id: snapshot.id, vm: snapshot.vm, time: snapshot.time });
      if (!options.json) context.stdout.write(`removed snapshot ${snapshot.id.slice(0, 8)} (vm ${snapshot.vm}, ${snapshot.time})\n`);
    }
    if (options.json) context.stdout.write(`${JSON.stringify({ removed })}\n`);
    return 0;
  });
}
