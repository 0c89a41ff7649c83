import { CofferError } from '../../errors/index.js';
import { resolveSnapshot, type Snapshot } from '../../repo/index.js';
import { diffSnapshotDisks } from '../../restore/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { disksText, snapshotLine } from './diff-text.js';

export interface DiffCommandOptions extends RepositoryOptions {
  disk?: string;
  files?: boolean;
}

/**
 * `coffer diff SNAPSHOT_A SNAPSHOT_B`: what changed from A to B. VM snapshots: each disk's
 * changed byte ranges (index pages only). Both must be of one kind (`E_USAGE` otherwise).
 */
export async function diffCommand(referenceA: string, referenceB: string, options: DiffCommandOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const a = await resolveSnapshot(repo, referenceA);
    const b = await resolveSnapshot(repo, referenceB);
    if ((a.files === undefined) !== (b.files === undefined)) {
      const kind = (s: Snapshot) => (s.files !== undefined ? 'a file snapshot' : 'a VM snapshot');
      throw new CofferError('E_USAGE', `${a.id.slice(0, 8)} is ${kind(a)} and ${b.id.slice(0, 8)} ${kind(b)}: compare snapshots of one kind`);
    }
    const disks = await diffSnapshotDisks(repo, a, b, { ...(options.disk !== undefined ? { disk: options.disk } : {}), signal: context.signal });
    if (options.json) {
      context.stdout.write(`${JSON.stringify({ a: snapshotJson(a), b: snapshotJson(b), kind: 'disks', ...disks })}\n`);
    } else {
      context.stdout.write(`${snapshotLine(a, b)}\n\n${disksText(disks)}`);
    }
    return 0;
  });
}

/** How a compared snapshot is named in the JSON document. */
function snapshotJson(s: Snapshot): object {
  return { id: s.id, shortId: s.id.slice(0, 8), vm: s.vm, time: new Date(s.time).toISOString() };
}
