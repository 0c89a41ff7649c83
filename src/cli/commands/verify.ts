import { randomInt } from 'node:crypto';
import { CofferError } from '../../errors/index.js';
import { addSnapshotNote, deleteSnapshotNote, listSnapshotNotes, parseRetentionDuration, subtractDuration, verifyRepository, type Repository, type SnapshotVerification, type VerificationSubset } from '../../repo/index.js';
import { ExitCode } from '../exit-codes.js';
import { lookUpDamagedFiles, renderDamagedFiles } from './damaged-files.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes } from '../format.js';
import { ProgressReporter } from '../progress.js';

export interface VerifyCommandOptions extends RepositoryOptions {
  readData?: boolean;
  readDataSubset?: string;
  since?: string;
  /** False (`--no-files`): do not name the files the damage touches. */
  files?: boolean;
}

/** The note kind under which each snapshot's verified share is recorded after a run. */
export const VERIFICATION_NOTE = 'verification';

/** `N/M` (the N-th of M slices by chunk id) or `P%` (a random sample, new every run). */
export function parseSubset(text: string): VerificationSubset {
  const slice = /^(\d{1,6})\/(\d{1,6})$/.exec(text);
  if (slice !== null) {
    const n = Number(slice[1]);
    const of = Number(slice[2]);
    if (n >= 1 && of >= 1 && n <= of) return { kind: 'slice', n, of };
  }
  const percent = /^(\d{1,3}(?:\.\d+)?)%$/.exec(text);
  if (percent !== null) {
    const p = Number(percent[1]);
    if (p > 0 && p <= 100) return p === 100 ? { kind: 'all' } : { kind: 'sample', percent: p, seed: randomInt(2 ** 32 - 1) };
  }
  throw new CofferError('E_USAGE', `--read-data-subset ${text}: give N/M (the N-th of M slices, e.g. 3/7 on the 3rd day of a week) or P% (e.g. 10%)`);
}

/** `coffer verify [--read-data]`: exit 13 when anything is missing or corrupt. */
export async function verifyCommand(options: VerifyCommandOptions, context: CommandContext): Promise<number> {
  const readData = options.readData === true || options.readDataSubset !== undefined;
  const subset = options.readDataSubset === undefined ? undefined : parseSubset(options.readDataSubset);
  if (options.since !== undefined && !readData) throw new CofferError('E_USAGE', '--since goes with --read-data or --read-data-subset');
  const now = new Date();
  const sinceMs = options.since === undefined ? undefined : now.getTime() - subtractDuration(now.getTime(), parseRetentionDuration(options.since));
  return withRepository(options, context, async (repo) => {
    const progress = ProgressReporter.for(context.stderr, options.json === true);
    const report = await verifyRepository(repo, {
      readData,
      ...(subset !== undefined ? { subset } : {}),
      ...(sinceMs !== undefined ? { sinceMs } : {}),
      now: () => new Date(),
      onProgress: (p) => {
        if (p.phase === 'chunks') progress.update({ label: 'verify chunks', done: p.done, total: p.total, figures: { read: p.bytesRead } });
      },
    });
    progress.done();
    if (readData) await recordVerification(repo, report.verification);
    const ok = report.damaged.length === 0;
    const files = options.files === false ? [] : await lookUpDamagedFiles(repo, report.affected, { signal: context.signal });
    if (options.json) {
      const affected = report.affected.map((hit, i) => ({ ...hit, ...files[i] }));
      context.stdout.write(`${JSON.stringify({ ok, ...report, affected })}\n`);
    } else {
      const skipped = report.chunksSkipped > 0 ? `, skipped ${report.chunksSkipped} read intact within ${options.since}` : '';
      const share = subset === undefined || subset.kind === 'all' ? '' : ` of subset ${options.readDataSubset}`;
      const what = readData ? `read and checked ${report.chunksRead} chunks${share} (${formatBytes(report.bytesRead)})${skipped}` : 'checked that every chunk exists';
      context.stdout.write(`${report.snapshots} snapshot(s), ${report.chunksReferenced} distinct chunks referenced; ${what}\n`);
      for (const damage of report.damaged) context.stdout.write(`DAMAGED ${damage.kind} ${damage.id.slice(0, 16)}… (${damage.problem}): ${damage.message}\n`);
      for (const [i, hit] of report.affected.entries()) {
        const ranges = hit.ranges.map((r) => `${r.start}-${r.end - 1}`).join(', ');
        context.stdout.write(`AFFECTED snapshot ${hit.snapshot.slice(0, 8)} (vm ${hit.vm}, ${hit.time}) disk ${hit.disk} bytes ${ranges}\n`);
        const found = files[i];
        if (found !== undefined) for (const line of renderDamagedFiles(found)) context.stdout.write(`${line}\n`);
      }
      if (report.quarantined > 0) {
        context.stdout.write(`${report.quarantined} damaged chunk(s) set aside under quarantine/; the next backup of the same data stores them again and heals the snapshots above\n`);
      }
      if (readData) {
        const full = report.verification.filter((v) => v.fullyVerifiedAt !== null).length;
        context.stdout.write(`${full} of ${report.verification.length} snapshot(s) have had every chunk read and found intact (coffer snapshots shows since when)\n`);
      }
      context.stdout.write(ok ? 'no errors were found\n' : `verify found ${report.damaged.length} damaged object(s)\n`);
    }
    return ok ? ExitCode.ok : ExitCode.verifyFailed;
  });
}

/** Replaces each snapshot's verification note with this run's figures. */
async function recordVerification(repo: Repository, verification: SnapshotVerification[]): Promise<void> {
  const previous = await listSnapshotNotes(repo, { kind: VERIFICATION_NOTE, onDamaged: () => undefined });
  const older = new Map<string, string[]>();
  for (const note of previous) older.set(note.snapshot, [...(older.get(note.snapshot) ?? []), note.id]);
  for (const v of verification) {
    await addSnapshotNote(repo, v.snapshot, VERIFICATION_NOTE, { chunks: v.chunks, verifiedChunks: v.verifiedChunks, fullyVerifiedAt: v.fullyVerifiedAt });
    for (const id of older.get(v.snapshot) ?? []) await deleteSnapshotNote(repo, v.snapshot, id);
  }
}
