import {
  rebuildChunkIndex,
  addSnapshotNote,
  deleteSnapshot,
  deleteSnapshotNote,
  listSnapshotNotes,
  listSnapshots,
  protectionOf,
  salvageSnapshot,
  skipDamaged,
  verifyRepository,
  type AffectedRange,
  type DamagedObject,
  type Repository,
  type Snapshot,
} from '../../repo/index.js';
import { CofferError } from '../../errors/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { ProgressReporter } from '../progress.js';
import { affectedLine, damagedLine } from './damage-lines.js';
import { lookUpDamagedFiles, type DamagedFiles } from './damaged-files.js';

import { DAMAGE_NOTE } from './damage-note.js';

export { DAMAGE_NOTE };
/** The note kind on a salvaged copy: which snapshot it was made from and what reads as zeros. */
export const SALVAGE_NOTE = 'salvage';

export interface RepairCommandOptions extends RepositoryOptions {
  readData?: boolean;
  salvage?: boolean;
  forget?: boolean;
  /** False (`--no-files`): do not name the files the damage touches. */
  files?: boolean;
  /** Format 2: rebuild the index segments from the pack trailers, nothing else. */
  index?: boolean;
}

/** One damaged snapshot and what was done about it. */
interface RepairedSnapshot {
  snapshot: string;
  vm: string;
  time: string;
  disks: { disk: string; ranges: { start: number; end: number }[]; files?: string[]; filesProblem?: string }[];
  salvagedAs?: string;
  /** The salvaged copy is one an earlier repair made for the same damage (none was added). */
  salvagedBefore?: boolean;
  forgotten: boolean;
  /** Why it was not forgotten although asked (protected). */
  kept?: string;
}

/**
 * `coffer repair [--read-data] [--salvage] [--forget]`: finds what cannot be restored (as
 * verify does: damaged chunks are set aside so the next backup of the same data heals them)
 * and marks every damaged snapshot with a `damage` note, which `coffer snapshots` shows; marks
 * of snapshots that have healed since are removed. Only when asked: `--salvage` writes, for
 * each damaged snapshot, a copy whose damaged blocks read as zeros (tag `salvaged`: restorable,
 * browsable for the files the damage spares); `--forget` removes the damaged snapshots (never
 * a protected one). Exit 0 when nothing is damaged or every damaged snapshot was dealt with
 * (salvaged or forgotten), 13 when damaged snapshots remain, only marked.
 */
export async function repairCommand(options: RepairCommandOptions, context: CommandContext): Promise<number> {
  return withRepository(options, context, async (repo) => {
    const progress = ProgressReporter.for(context.stderr, options.json === true);
    if (options.index === true) {
      const rebuilt = await rebuildChunkIndex(repo, { onPack: (done) => progress.update({ label: 'repair: read pack trailers', done, total: done }) });
      progress.done();
      if (options.json) context.stdout.write(`${JSON.stringify(rebuilt)}\n`);
      else {
        context.stdout.write(`rebuilt the index from ${rebuilt.packs} pack(s): ${rebuilt.chunks} chunk(s) in ${rebuilt.segmentsWritten} segment(s), ${rebuilt.segmentsRemoved} old segment(s) removed\n`);
        for (const u of rebuilt.unreadable) context.stdout.write(`unreadable pack ${u.pack}: ${u.message}\n`);
      }
      return rebuilt.unreadable.length === 0 ? 0 : ExitCode.verifyFailed;
    }
    const report = await verifyRepository(repo, {
      readData: options.readData === true,
      now: () => new Date(),
      onProgress: (p) => {
        if (p.phase === 'chunks') progress.update({ label: 'repair: check chunks', done: p.done, total: p.total });
      },
    });
    progress.done();
    if (report.notRecorded !== undefined) {
      // A repository that takes no writes (read-only, full): what is damaged is still said; nothing can be marked, salvaged or forgotten.
      if (options.json) context.stdout.write(`${JSON.stringify({ damaged: report.damaged, affected: report.affected, notRecorded: report.notRecorded })}\n`);
      else {
        for (const damage of report.damaged) context.stdout.write(`${damagedLine(damage)}\n`);
        for (const hit of report.affected) context.stdout.write(`${affectedLine(hit)}\n`);
        context.stdout.write(report.damaged.length === 0 ? 'no damage found\n' : `${report.damaged.length} damaged object(s)\n`);
      }
      context.stderr.write(`warning: repair cannot write to the repository (${report.notRecorded}): nothing was marked, salvaged or forgotten\n`);
      return report.damaged.length === 0 ? ExitCode.ok : ExitCode.verifyFailed;
    }
    const bad = new Set(report.damaged.filter((d) => d.kind === 'chunk').map((d) => d.id));
    // Named before anything is forgotten: the lookup reads the damaged snapshots' filesystems.
    const files = options.files === false ? [] : await lookUpDamagedFiles(repo, report.affected, { signal: context.signal });
    const bySnapshot = groupBySnapshot(report.affected, files);
    const snapshots = new Map((await listSnapshots(repo, { onDamaged: skipDamaged })).map((s) => [s.id, s]));
    const manifests = await unreadableManifests(repo, report.damaged, options.forget === true);
    const repaired: RepairedSnapshot[] = [];
    for (const [id, disks] of bySnapshot) {
      const snapshot = snapshots.get(id);
      if (snapshot === undefined) continue;
      const entry: RepairedSnapshot = { snapshot: id, vm: snapshot.vm, time: snapshot.time, disks, forgotten: false };
      const older = await listSnapshotNotes(repo, { snapshot: id, kind: DAMAGE_NOTE, onDamaged: () => undefined });
      await addSnapshotNote(repo, id, DAMAGE_NOTE, { disks, damagedObjects: report.damaged.length });
      for (const note of older) await deleteSnapshotNote(repo, id, note.id); // one current mark per snapshot
      if (options.salvage) {
        const earlier = await earlierSalvage(repo, id, disks, snapshots);
        if (earlier !== undefined) {
          entry.salvagedAs = earlier;
          entry.salvagedBefore = true;
        } else {
          const salvaged = await salvageSnapshot(repo, snapshot, (hex) => bad.has(hex));
          await addSnapshotNote(repo, salvaged.snapshot.id, SALVAGE_NOTE, { from: id, zeroed: salvaged.zeroed });
          entry.salvagedAs = salvaged.snapshot.id;
        }
      }
      if (options.forget) {
        const kept = await forgetUnlessKept(repo, id);
        if (kept === undefined) entry.forgotten = true;
        else entry.kept = kept;
      }
      repaired.push(entry);
    }
    const healed = await clearHealedMarks(repo, new Set(bySnapshot.keys()), snapshots);
    if (options.json) context.stdout.write(`${JSON.stringify({ damaged: report.damaged, snapshots: repaired, unreadableManifests: manifests, healed })}\n`);
    else context.stdout.write(render(repaired, manifests, healed, report.damaged.length));
    // Damaged index segments (format 2) are rebuilt from the packs, not marked: 'repair --index'.
    const segments = report.damaged.filter((d) => d.kind === 'segment');
    if (segments.length > 0 && !options.json) context.stdout.write(`${segments.length} index segment(s) damaged (${segments.map((d) => d.id.slice(0, 8)).join(', ')}): run 'coffer repair --index' to rebuild the index from the packs\n`);
    const remaining = repaired.filter((r) => !r.forgotten && r.salvagedAs === undefined).length + manifests.filter((m) => !m.forgotten).length + segments.length;
    return remaining === 0 ? ExitCode.ok : ExitCode.verifyFailed;
  });
}

/** A snapshot whose manifest cannot be read (corrupt): nothing of it can be restored or salvaged. */
interface UnreadableManifest {
  snapshot: string;
  message: string;
  forgotten: boolean;
  /** Why it was not forgotten although asked (protected, locked). */
  kept?: string;
}

/** The snapshots verify found with corrupt manifests; with `forget`, each removed (never a protected or locked one). */
async function unreadableManifests(repo: Repository, damaged: readonly DamagedObject[], forget: boolean): Promise<UnreadableManifest[]> {
  const out: UnreadableManifest[] = [];
  for (const d of damaged) {
    if (d.kind !== 'manifest' || d.problem !== 'corrupt') continue;
    const entry: UnreadableManifest = { snapshot: d.id, message: d.message, forgotten: false };
    if (forget) {
      const kept = await forgetUnlessKept(repo, d.id);
      if (kept === undefined) entry.forgotten = true;
      else entry.kept = kept;
    }
    out.push(entry);
  }
  return out;
}

/**
 * Forgets a damaged snapshot for `--forget`; undefined when it is gone, else why it stays: a
 * protected one, or one under Object Lock (said for that snapshot, and the others go on).
 */
async function forgetUnlessKept(repo: Repository, id: string): Promise<string | undefined> {
  if ((await protectionOf(repo, id)) !== null) return 'protected: unprotect it to forget it';
  try {
    await deleteSnapshot(repo, id);
    return undefined;
  } catch (error) {
    if (!(error instanceof CofferError) || error.code !== 'E_SNAPSHOT_LOCKED') throw error;
    return error.message;
  }
}

function groupBySnapshot(affected: AffectedRange[], files: readonly DamagedFiles[]): Map<string, RepairedSnapshot['disks']> {
  const out = new Map<string, RepairedSnapshot['disks']>();
  affected.forEach((a, i) => {
    const found = files[i];
    const named = found?.files?.flatMap((v) => v.files.map((f) => `${v.volume}:${f.path}`)).slice(0, MAX_FILES_IN_MARK);
    const entry = { disk: a.disk, ranges: a.ranges, ...(named !== undefined ? { files: named } : {}), ...(found?.filesProblem !== undefined ? { filesProblem: found.filesProblem } : {}) };
    out.set(a.snapshot, [...(out.get(a.snapshot) ?? []), entry]);
  });
  return out;
}

/**
 * The salvaged copy an earlier `repair --salvage` made of snapshot `from` for the same damage
 * (its note's zeroed ranges are the ranges damaged now), if it still exists: salvaging again
 * would add one more identical copy on every run.
 */
async function earlierSalvage(repo: Repository, from: string, disks: RepairedSnapshot['disks'], snapshots: ReadonlyMap<string, Snapshot>): Promise<string | undefined> {
  const shape = (list: readonly { disk: string; ranges: readonly { start: number; end: number }[] }[]): string =>
    JSON.stringify([...list].map((d) => [d.disk, d.ranges.map((r) => [r.start, r.end])]).sort());
  const now = shape(disks);
  for (const note of await listSnapshotNotes(repo, { kind: SALVAGE_NOTE, onDamaged: () => undefined })) {
    const data = note.data as { from?: unknown; zeroed?: unknown };
    if (data.from !== from || !snapshots.has(note.snapshot) || !Array.isArray(data.zeroed)) continue;
    try {
      if (shape(data.zeroed as RepairedSnapshot['disks']) === now) return note.snapshot;
    } catch {
      // A note of another shape: not a copy to reuse.
    }
  }
  return undefined;
}

/** Files named per disk in a damage mark (the verify report has them all). */
const MAX_FILES_IN_MARK = 100;

/** Removes the damage marks of snapshots this run found intact (a later backup healed them). */
async function clearHealedMarks(repo: Repository, damaged: ReadonlySet<string>, snapshots: ReadonlyMap<string, Snapshot>): Promise<string[]> {
  const healed = new Set<string>();
  for (const note of await listSnapshotNotes(repo, { kind: DAMAGE_NOTE, onDamaged: () => undefined })) {
    if (damaged.has(note.snapshot) || !snapshots.has(note.snapshot)) continue;
    await deleteSnapshotNote(repo, note.snapshot, note.id);
    healed.add(note.snapshot);
  }
  return [...healed];
}

function render(repaired: RepairedSnapshot[], manifests: UnreadableManifest[], healed: string[], damagedObjects: number): string {
  const lines: string[] = [];
  for (const m of manifests) {
    lines.push(`DAMAGED snapshot ${m.snapshot.slice(0, 8)}: its manifest cannot be read (${m.message}); nothing of it can be restored`);
    if (m.forgotten) lines.push('  forgotten');
    else if (m.kept !== undefined) lines.push(`  kept: ${m.kept}`);
    else lines.push(`  --forget (or 'coffer forget ${m.snapshot.slice(0, 8)}') removes it`);
  }
  if (repaired.length === 0 && manifests.length === 0) lines.push(damagedObjects === 0 ? 'no damage found' : `${damagedObjects} damaged object(s), used by no snapshot`);
  for (const r of repaired) {
    const ranges = r.disks.map((d) => `${d.disk} ${d.ranges.map((x) => `${x.start}-${x.end - 1}`).join(', ')}`).join('; ');
    lines.push(`DAMAGED snapshot ${r.snapshot.slice(0, 8)} (vm ${r.vm}, ${r.time}): ${ranges}`);
    for (const d of r.disks) for (const file of d.files ?? []) lines.push(`  FILE ${d.disk} ${file}`);
    if (r.salvagedAs !== undefined) lines.push(`  ${r.salvagedBefore === true ? 'salvaged before as' : 'salvaged as'} ${r.salvagedAs.slice(0, 8)} (tag salvaged): the ranges above read as zeros there`);
    if (r.forgotten) lines.push('  forgotten');
    if (r.kept !== undefined) lines.push(`  kept: ${r.kept}`);
    if (r.salvagedAs === undefined && !r.forgotten) lines.push('  marked damaged (coffer snapshots shows it); --salvage for a restorable copy, --forget to remove it');
  }
  for (const id of healed) lines.push(`snapshot ${id.slice(0, 8)} is intact again (healed by a later backup): its damage mark was removed`);
  return `${lines.join('\n')}\n`;
}
