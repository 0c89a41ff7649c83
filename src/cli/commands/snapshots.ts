import { listSnapshots, type Snapshot } from '../../repo/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes, formatTable } from '../format.js';

export interface SnapshotsOptions extends RepositoryOptions {
  vm?: string;
}

/** The JSON form of a snapshot in `coffer snapshots --json` (a stable interface). */
export function snapshotJson(snapshot: Snapshot): Record<string, unknown> {
  return {
    id: snapshot.id,
    shortId: snapshot.id.slice(0, 8),
    vm: snapshot.vm,
    time: new Date(snapshot.time).toISOString(),
    hostname: snapshot.hostname,
    tags: snapshot.tags,
    parent: snapshot.parent,
    disks: snapshot.disks.map((disk) => ({ name: disk.name, size: disk.size, sourceFormat: disk.sourceFormat, source: disk.source, blockSize: disk.blockSize })),
    stats: snapshot.stats,
    ...(snapshot.consistency === undefined ? {} : { consistency: snapshot.consistency }),
  };
}

/** `coffer snapshots`: every snapshot, oldest first. */
export async function snapshotsCommand(options: SnapshotsOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const damaged: string[] = [];
    const snapshots = await listSnapshots(repo, { ...(options.vm ? { vm: options.vm } : {}), onDamaged: (id) => damaged.push(id) });
    if (options.json) {
      context.stdout.write(`${JSON.stringify(snapshots.map(snapshotJson))}\n`);
    } else {
      const rows = [['ID', 'Time (UTC)', 'VM', 'Host', 'Tags', 'Disks', 'Size', 'Consistency']];
      for (const s of snapshots) {
        rows.push([s.id.slice(0, 8), s.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), s.vm, s.hostname, s.tags.join(','), String(s.disks.length), formatBytes(s.disks.reduce((sum, d) => sum + d.size, 0)), consistencyLabel(s)]);
      }
      context.stdout.write(`${formatTable(rows)}\n${snapshots.length} snapshot(s)\n`);
    }
    for (const id of damaged) context.stderr.write(`warning: snapshot ${id.slice(0, 8)} has a damaged manifest and is not listed; run 'coffer verify'\n`);
    return 0;
  });
}

/** `application (2 fs frozen 35 ms)`, `crash (no guest agent channel)`, or `-` when the source could not tell. */
export function consistencyLabel(snapshot: Pick<Snapshot, 'consistency'>): string {
  const c = snapshot.consistency;
  if (c === undefined) return '-';
  if (c.level === 'application') return `application (${c.frozenFilesystems ?? '?'} fs frozen ${c.frozenMs ?? '?'} ms)`;
  return c.reason === undefined ? 'crash' : `crash (${c.reason})`;
}
