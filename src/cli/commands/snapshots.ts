import { listProtections, listSnapshotNotes, listSnapshots, TAPE_NOTE, TEST_RESTORE_NOTE, testRestoreOf, VERIFICATION_NOTE, verificationOf, type Protection, type Snapshot, type StoredSnapshotNote, type TapeNoteData } from '../../repo/index.js';
import { DAMAGE_NOTE } from './damage-note.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes, formatTable } from '../format.js';

export interface SnapshotsOptions extends RepositoryOptions {
  vm?: string;
}

/**
 * The JSON form of a snapshot in `coffer snapshots --json` (a stable interface). `tags` are
 * the effective tags: a `coffer tag` record's when one set them, and then `tagsSetAt` says when
 * and `originalTags` holds the manifest's own tags, if they differ. `protection`
 * is null when the snapshot is not protected (`coffer protect`); `testRestore` is the newest
 * `coffer test-restore` result, absent when there is none.
 */
export function snapshotJson(snapshot: Snapshot, protection: Protection | null = null, testRestore?: TestRestoreSummary, verification?: VerificationSummary): Record<string, unknown> {
  return {
    id: snapshot.id,
    shortId: snapshot.id.slice(0, 8),
    vm: snapshot.vm,
    time: new Date(snapshot.time).toISOString(),
    hostname: snapshot.hostname,
    tags: snapshot.tags,
    ...(snapshot.retagged === undefined ? {} : { tagsSetAt: snapshot.retagged.time }),
    ...(snapshot.retagged === undefined || sameTags(snapshot.retagged.manifestTags, snapshot.tags) ? {} : { originalTags: snapshot.retagged.manifestTags }),
    parent: snapshot.parent,
    disks: snapshot.disks.map((disk) => ({
      name: disk.name,
      size: disk.size,
      sourceFormat: disk.sourceFormat,
      source: disk.source,
      blockSize: disk.blockSize,
      // How unchanged ranges were known, and why a disk was read in full (docs/live-backup.md).
      ...(disk.changeTracking === undefined ? {} : { changeTracking: { ...disk.changeTracking } }),
    })),
    stats: snapshot.stats,
    ...(snapshot.files !== undefined ? { files: { paths: snapshot.files.paths, ...(snapshot.files.stdinName !== undefined ? { stdinName: snapshot.files.stdinName } : {}), entries: snapshot.files.entries, warnings: snapshot.files.warnings.length } } : {}),
    protected: protection !== null,
    protection: protection === null ? null : { time: protection.time, reason: protection.reason, damaged: protection.damaged },
    ...(testRestore ? { testRestore } : {}),
    ...(verification ? { verification } : {}),
    ...(snapshot.consistency === undefined ? {} : { consistency: snapshot.consistency }),
  };
}

/** How much of a snapshot `coffer verify --read-data(-subset)` has read and found intact. */
export interface VerificationSummary {
  /** When the newest verify run recorded it. */
  time: string;
  chunks: number;
  verifiedChunks: number;
  fullyVerifiedAt: string | null;
}

/** The newest verification note of each snapshot, by snapshot id. */
function latestVerifications(notes: StoredSnapshotNote[]): Map<string, VerificationSummary> {
  const latest = new Map<string, VerificationSummary>();
  for (const note of notes) {
    const v = verificationOf(note);
    if (v !== undefined) latest.set(note.snapshot, v);
  }
  return latest;
}

/** `2026-11-24` when every chunk was read, else the share read so far. */
function verifiedCell(v: VerificationSummary | undefined): string {
  if (v === undefined) return '';
  if (v.fullyVerifiedAt !== null) return v.fullyVerifiedAt.slice(0, 10);
  return v.chunks === 0 ? '' : `${Math.floor((100 * v.verifiedChunks) / v.chunks)}%`;
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
    const r = testRestoreOf(note);
    if (r !== undefined) latest.set(note.snapshot, { time: r.time, passed: r.passed, durationMs: r.durationMs, failures: r.failures });
  }
  return latest;
}

/** `coffer snapshots`: every snapshot, oldest first. */
export async function snapshotsCommand(options: SnapshotsOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const damaged: string[] = [];
    // The listing applies the tag records (`coffer tag`); then one pass over the notes (each is fetched and decrypted), split by kind.
    const snapshots = await listSnapshots(repo, { ...(options.vm ? { vm: options.vm } : {}), onDamaged: (id) => damaged.push(id), onDamagedTags: (key) => damaged.push(key) });
    const notes = await listSnapshotNotes(repo, { onDamaged: (key) => damaged.push(key) });
    const protections = await listProtections(repo);
    const ofKind = (kind: string) => notes.filter((n) => n.kind === kind);
    const tested = latestTestRestores(ofKind(TEST_RESTORE_NOTE));
    const verified = latestVerifications(ofKind(VERIFICATION_NOTE));
    const tapes = tapesBySnapshot(ofKind(TAPE_NOTE));
    const marked = new Map(ofKind(DAMAGE_NOTE).map((n) => [n.snapshot, { time: n.time, ...(n.data as object) }]));
    if (options.json) {
      context.stdout.write(`${JSON.stringify(snapshots.map((s) => ({ ...snapshotJson(s, protections.get(s.id) ?? null, tested.get(s.id), verified.get(s.id)), ...(marked.has(s.id) ? { damage: marked.get(s.id) } : {}), ...(tapes.has(s.id) ? { tapes: tapes.get(s.id) } : {}) })))}\n`);
    } else {
      const rows = [['ID', 'Time (UTC)', 'VM', 'Host', 'Tags', 'Disks', 'Size', 'Consistency', 'Protected', 'Verified', 'Test restore']];
      for (const s of snapshots) {
        const test = tested.get(s.id);
        rows.push([
          s.id.slice(0, 8), s.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), s.vm, s.hostname, s.tags.join(','), s.files !== undefined ? `files: ${s.files.stdinName !== undefined ? `stdin ${s.files.stdinName}` : s.files.paths.join(' ')}` : String(s.disks.length),
          formatBytes(s.files !== undefined ? s.stats.bytesLogical : s.disks.reduce((sum, d) => sum + d.size, 0)), consistencyLabel(s), protectedCell(protections.get(s.id)), marked.has(s.id) ? 'DAMAGED' : verifiedCell(verified.get(s.id)),
          test === undefined ? '' : `${test.passed ? 'passed' : 'FAILED'} ${test.time.slice(0, 10)}`,
        ]);
      }
      context.stdout.write(`${formatTable(rows)}\n${snapshots.length} snapshot(s)\n`);
    }
    for (const id of damaged) {
      if (id.startsWith('notes/')) context.stderr.write(`warning: the note ${id} is damaged and was skipped; run 'coffer verify'\n`);
      else if (id.startsWith('tags/')) context.stderr.write(`warning: the tag record ${id} is damaged and was skipped (an older one, or the backup's tags, stand); run 'coffer verify'\n`);
      else context.stderr.write(`warning: snapshot ${id.slice(0, 8)} has a damaged manifest and is not listed; run 'coffer verify'\n`);
    }
    return 0;
  });
}

/** The media catalog: every tape set holding each snapshot (notes of kind `tape`), oldest first. */
function tapesBySnapshot(notes: StoredSnapshotNote[]): Map<string, (TapeNoteData & { time: string })[]> {
  const tapes = new Map<string, (TapeNoteData & { time: string })[]>();
  for (const note of notes) {
    const data = note.data as TapeNoteData;
    if (typeof data !== 'object' || data === null || typeof data.tapeSet !== 'string' || !Array.isArray(data.volumes)) continue;
    tapes.set(note.snapshot, [...(tapes.get(note.snapshot) ?? []), { time: note.time, ...data }]);
  }
  return tapes;
}

/** `yes`, with the reason (cut to 40 characters) when there is one. */
function protectedCell(protection: Protection | undefined): string {
  if (protection === undefined) return '';
  if (protection.damaged) return 'yes (marker damaged)';
  if (protection.reason === null) return 'yes';
  return `yes: ${protection.reason.length > 40 ? `${protection.reason.slice(0, 39)}…` : protection.reason}`;
}

/** `application (2 fs frozen 35 ms)`, `crash (no guest agent channel)`, or `-` when the source could not tell. */
export function consistencyLabel(snapshot: Pick<Snapshot, 'consistency'>): string {
  const c = snapshot.consistency;
  if (c === undefined) return '-';
  if (c.level === 'application') return `application (${c.frozenFilesystems ?? '?'} fs frozen ${c.frozenMs ?? '?'} ms)`;
  return c.reason === undefined ? 'crash' : `crash (${c.reason})`;
}

const sameTags = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((tag, i) => tag === b[i]);
