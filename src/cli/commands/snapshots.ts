import { listProtections, listSnapshots, type Protection, type Snapshot } from '../../repo/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes, formatTable } from '../format.js';

export interface SnapshotsOptions extends RepositoryOptions {
  vm?: string;
}

/**
 * The JSON form of a snapshot in `coffer snapshots --json` (a stable interface). `protection`
 * is null when the snapshot is not protected (`coffer protect`).
 */
export function snapshotJson(snapshot: Snapshot, protection: Protection | null = null): Record<string, unknown> {
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
    protected: protection !== null,
    protection: protection === null ? null : { time: protection.time, reason: protection.reason, damaged: protection.damaged },
  };
}

/** `coffer snapshots`: every snapshot, oldest first. */
export async function snapshotsCommand(options: SnapshotsOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const damaged: string[] = [];
    const snapshots = await listSnapshots(repo, { ...(options.vm ? { vm: options.vm } : {}), onDamaged: (id) => damaged.push(id) });
    const protections = await listProtections(repo);
    if (options.json) {
      context.stdout.write(`${JSON.stringify(snapshots.map((s) => snapshotJson(s, protections.get(s.id) ?? null)))}\n`);
    } else {
      const rows = [['ID', 'Time (UTC)', 'VM', 'Host', 'Tags', 'Disks', 'Size', 'Protected']];
      for (const s of snapshots) {
        rows.push([
          s.id.slice(0, 8), s.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), s.vm, s.hostname, s.tags.join(','), String(s.disks.length),
          formatBytes(s.disks.reduce((sum, d) => sum + d.size, 0)), protectedCell(protections.get(s.id)),
        ]);
      }
      context.stdout.write(`${formatTable(rows)}\n${snapshots.length} snapshot(s)\n`);
    }
    for (const id of damaged) context.stderr.write(`warning: snapshot ${id.slice(0, 8)} has a damaged manifest and is not listed; run 'coffer verify'\n`);
    return 0;
  });
}

/** `yes`, with the reason (cut to 40 characters) when there is one. */
function protectedCell(protection: Protection | undefined): string {
  if (protection === undefined) return '';
  if (protection.damaged) return 'yes (marker damaged)';
  if (protection.reason === null) return 'yes';
  return `yes: ${protection.reason.length > 40 ? `${protection.reason.slice(0, 39)}…` : protection.reason}`;
}
