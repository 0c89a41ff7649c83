import { listSnapshotNotes, listSnapshots, type Snapshot, type StoredSnapshotNote } from '../../repo/index.js';
import { TEST_RESTORE_NOTE } from './test-restore.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes, formatTable } from '../format.js';

export interface SnapshotsOptions extends RepositoryOptions {
  vm?: string;
}

/** The JSON form of a snapshot in `coffer snapshots --json` (a stable interface). */
export function snapshotJson(snapshot: Snapshot, testRestore?: TestRestoreSummary): Record<string, unknown> {
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
    ...(testRestore ? { testRestore } : {}),
  };
}

/** The newest test restore of a snapshot, as `coffer snapshots` shows it. */
export interface TestRestoreSummary {
  time: string;
  passed: boolean;
  durationMs: number;
  failures: string[];
}

/** The newest test-restore note of each snapshot, by snapshot id. */
function latestTestRestores(notes: StoredSnapshotNote[]): Map<string, TestRestoreSummary> {
  const latest = new Map<string, TestRestoreSummary>();
  for (const note of notes) { // oldest first: later ones replace earlier ones
    const data = note.data as { passed?: unknown; durationMs?: unknown; failures?: unknown };
    if (typeof data !== 'object' || data === null || typeof data.passed !== 'boolean') continue;
    latest.set(note.snapshot, {
      time: note.time,
      passed: data.passed,
      durationMs: typeof data.durationMs === 'number' ? data.durationMs : 0,
      failures: Array.isArray(data.failures) ? data.failures.filter((f): f is string => typeof f === 'string') : [],
    });
  }
  return latest;
}

/** `coffer snapshots`: every snapshot, oldest first. */
export async function snapshotsCommand(options: SnapshotsOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const damaged: string[] = [];
    const snapshots = await listSnapshots(repo, { ...(options.vm ? { vm: options.vm } : {}), onDamaged: (id) => damaged.push(id) });
    const tested = latestTestRestores(await listSnapshotNotes(repo, { kind: TEST_RESTORE_NOTE, onDamaged: (key) => damaged.push(key) }));
    if (options.json) {
      context.stdout.write(`${JSON.stringify(snapshots.map((s) => snapshotJson(s, tested.get(s.id))))}\n`);
    } else {
      const rows = [['ID', 'Time (UTC)', 'VM', 'Host', 'Tags', 'Disks', 'Size', 'Test restore']];
      for (const s of snapshots) {
        const test = tested.get(s.id);
        const testText = test === undefined ? '' : `${test.passed ? 'passed' : 'FAILED'} ${test.time.slice(0, 10)}`;
        rows.push([s.id.slice(0, 8), s.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), s.vm, s.hostname, s.tags.join(','), String(s.disks.length), formatBytes(s.disks.reduce((sum, d) => sum + d.size, 0)), testText]);
      }
      context.stdout.write(`${formatTable(rows)}\n${snapshots.length} snapshot(s)\n`);
    }
    for (const id of damaged) {
      if (id.startsWith('notes/')) context.stderr.write(`warning: the note ${id} is damaged and was skipped; run 'coffer verify'\n`);
      else context.stderr.write(`warning: snapshot ${id.slice(0, 8)} has a damaged manifest and is not listed; run 'coffer verify'\n`);
    }
    return 0;
  });
}
