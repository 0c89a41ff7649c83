import { CofferError } from '../../errors/index.js';
import { isUnwritableStorage, listSnapshots, parseRetentionDuration, parseVerificationSubset, recordSnapshotVerifications, subtractDuration, syncedFromNotes, verifyRepository, type SyncedFrom } from '../../repo/index.js';
import { ExitCode } from '../exit-codes.js';
import { copyRepairAdvice } from './copy-repair-advice.js';
import { affectedLine, damagedLine } from './damage-lines.js';
import type { DamagedFiles } from './damaged-files.js';
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

/** `coffer verify [--read-data]`: exit 13 when anything is missing or corrupt. */
export async function verifyCommand(options: VerifyCommandOptions, context: CommandContext): Promise<number> {
  const readData = options.readData === true || options.readDataSubset !== undefined;
  const subset = options.readDataSubset === undefined ? undefined : parseVerificationSubset(options.readDataSubset, '--read-data-subset');
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
    let notRecorded = report.notRecorded;
    if (readData && notRecorded === undefined) {
      await recordSnapshotVerifications(repo, report.verification).catch((error: unknown) => {
        if (!isUnwritableStorage(error)) throw error;
        notRecorded = (error as Error).message;
      });
    }
    const ok = report.damaged.length === 0;
    // The file-level readers (fs/, volume/, restore/: two thirds of this command's modules,
    // ~0.1 s to load) are loaded only when there is damage to name files for.
    const damagedFiles = report.affected.length === 0 || options.files === false ? undefined : await import('./damaged-files.js');
    const files: DamagedFiles[] = damagedFiles === undefined ? [] : await damagedFiles.lookUpDamagedFiles(repo, report.affected, { signal: context.signal });
    // Damaged copies made by coffer sync: their source can send the data again (sync --check).
    const copiedFrom = new Map<string, SyncedFrom>();
    if (report.affected.length > 0) for (const { copy, from } of await syncedFromNotes(repo)) copiedFrom.set(copy, from);
    if (options.json) {
      const affected = report.affected.map((hit, i) => ({ ...hit, ...files[i], ...(copiedFrom.has(hit.snapshot) ? { syncedFrom: copiedFrom.get(hit.snapshot) } : {}) }));
      context.stdout.write(`${JSON.stringify({ ok, ...report, affected, ...(notRecorded !== undefined ? { notRecorded } : {}) })}\n`);
    } else {
      const skipped = report.chunksSkipped > 0 ? `, skipped ${report.chunksSkipped} read intact within ${options.since}` : '';
      const share = subset === undefined || subset.kind === 'all' ? '' : ` of subset ${options.readDataSubset}`;
      const what = readData ? `read and checked ${report.chunksRead} chunks${share} (${formatBytes(report.bytesRead)})${skipped}` : 'checked that every chunk exists';
      context.stdout.write(`${report.snapshots} snapshot(s), ${report.chunksReferenced} distinct chunks referenced; ${what}\n`);
      for (const damage of report.damaged) context.stdout.write(`${damagedLine(damage)}\n`);
      for (const [i, hit] of report.affected.entries()) {
        context.stdout.write(`${affectedLine(hit)}\n`);
        const found = files[i];
        if (found !== undefined && damagedFiles !== undefined) for (const line of damagedFiles.renderDamagedFiles(found)) context.stdout.write(`${line}\n`);
      }
      if (copiedFrom.size > 0) {
        const fileSnapshots = new Set((await listSnapshots(repo)).filter((s) => s.files !== undefined).map((s) => s.id));
        for (const line of copyRepairAdvice(report.affected, copiedFrom, (id) => fileSnapshots.has(id), repo.location)) context.stdout.write(`${line}\n`);
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
    if (notRecorded !== undefined) context.stderr.write(`warning: the result could not be recorded in the repository (${notRecorded}); what is reported above stands${ok ? '' : ', and no damaged chunk was set aside'}\n`);
    return ok ? ExitCode.ok : ExitCode.verifyFailed;
  }, { startThreads: readData });
}

