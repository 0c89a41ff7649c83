import { CofferError } from '../../errors/index.js';
import { resolveSnapshot, setSnapshotTags, type Snapshot, type TagChange } from '../../repo/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';

export interface TagOptions extends RepositoryOptions {
  /** Tags to add (each as given, as `backup --tag` takes it). */
  add?: string[];
  /** Tags to remove. */
  remove?: string[];
  /** The whole new list, comma-separated (repeatable; `--set ''`: none). */
  set?: string[];
  /** No tags at all (`--set ''`). */
  clear?: boolean;
}

/** The change the options ask for; `E_USAGE` when they ask for none or for contradictory ones. */
export function tagChangeOf(options: TagOptions): TagChange {
  const replaces = options.set !== undefined || options.clear === true;
  const edits = options.add !== undefined || options.remove !== undefined;
  if (options.set !== undefined && options.clear === true) throw new CofferError('E_USAGE', '--set and --clear both replace the tags: give one');
  if (replaces && edits) throw new CofferError('E_USAGE', '--set/--clear replace the tags: they do not go with --add or --remove');
  if (!replaces && !edits) throw new CofferError('E_USAGE', 'say how to change the tags: --add TAG, --remove TAG, --set TAG[,TAG…] or --clear');
  if (options.clear === true) return { set: [] };
  if (options.set !== undefined) {
    const set = options.set.flatMap((list) => (list === '' ? [] : list.split(',')));
    if (set.includes('')) throw new CofferError('E_USAGE', `--set ${options.set.join(',')}: an empty tag between commas`);
    return { set };
  }
  return { ...(options.add !== undefined ? { add: options.add } : {}), ...(options.remove !== undefined ? { remove: options.remove } : {}) };
}

/**
 * `coffer tag SNAPSHOT... --add T | --remove T | --set T,T | --clear`: changes the tags of
 * snapshots after the fact, as a tag record (the manifest is immutable; snapshot-tags.ts).
 * Every snapshot is resolved before any is changed (a typo in the third leaves the first two
 * as they were). The newest record wins whole: of two admins tagging at once, one's list stands.
 */
export async function tagCommand(references: string[], options: TagOptions, context: CommandContext): Promise<number> {
  const change = tagChangeOf(options);
  if (references.length === 0) throw new CofferError('E_USAGE', 'name the snapshots to tag (ids or prefixes, latest, or NAME:latest)');
  return withRepository(options, context, async (repo) => {
    const snapshots = new Map<string, Snapshot>();
    for (const reference of references) {
      const snapshot = await resolveSnapshot(repo, reference);
      snapshots.set(snapshot.id, snapshot);
    }
    const results = [];
    for (const snapshot of snapshots.values()) {
      const outcome = await setSnapshotTags(repo, snapshot, change, { now: new Date() });
      const manifestTags = snapshot.retagged?.manifestTags ?? snapshot.tags;
      results.push({
        id: snapshot.id,
        shortId: snapshot.id.slice(0, 8),
        vm: snapshot.vm,
        time: new Date(snapshot.time).toISOString(),
        tags: outcome.tags,
        previousTags: outcome.previous,
        changed: outcome.record !== null,
        ...(sameTags(outcome.tags, manifestTags) ? {} : { originalTags: manifestTags }),
      });
      if (!options.json) {
        const list = (tags: readonly string[]) => (tags.length === 0 ? '(none)' : tags.join(','));
        context.stdout.write(
          outcome.record === null
            ? `snapshot ${snapshot.id.slice(0, 8)} (vm ${snapshot.vm}, ${snapshot.time}): tags unchanged: ${list(outcome.tags)}\n`
            : `tagged snapshot ${snapshot.id.slice(0, 8)} (vm ${snapshot.vm}, ${snapshot.time}): ${list(outcome.tags)} (were ${list(outcome.previous)})\n`,
        );
      }
    }
    if (options.json) context.stdout.write(`${JSON.stringify({ snapshots: results })}\n`);
    return 0;
  });
}

const sameTags = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((tag, i) => tag === b[i]);
