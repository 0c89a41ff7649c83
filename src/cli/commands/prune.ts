import { pruneRepository, SPACE_RESERVE_BYTES, type PruneReport } from '../../repo/index.js';
import { CofferError } from '../../errors/index.js';
import type { CommandContext } from '../context.js';
import { withRepository, type RepositoryOptions } from '../context.js';
import { formatBytes } from '../format.js';
import { ProgressReporter } from '../progress.js';
import type { Repository } from '../../repo/index.js';

export interface PruneCommandOptions extends RepositoryOptions {
  dryRun?: boolean;
  wait?: string;
  repackThreshold?: string;
}

/** `coffer prune [--dry-run] [--wait MINUTES] [--repack-threshold PERCENT]`: removes what no snapshot references. */
export async function pruneCommand(options: PruneCommandOptions, context: CommandContext): Promise<number> {
  const waitMs = parseWait(options.wait);
  const repackThreshold = parseRepackThreshold(options.repackThreshold);
  return withRepository(options, context, async (repo) => {
    const report = await runPrune(repo, { dryRun: options.dryRun === true, waitMs, json: options.json === true, ...(repackThreshold !== undefined ? { repackThreshold } : {}) }, context);
    if (options.json) {
      // The warning the text report ends with, as a JSON line on stderr where scripts look for warnings.
      if (report.spaceReserve?.restored === false) context.stderr.write(`${JSON.stringify({ type: 'warning', code: 'E_NO_SPACE', message: NO_ROOM_FOR_RESERVE })}\n`);
      context.stdout.write(`${JSON.stringify(report)}\n`);
    }
    else context.stdout.write(renderPrune(report));
    return 0;
  });
}

/** Minutes to wait for running backups (default 30); 0 fails at once when one runs. */
export function parseWait(text: string | undefined): number {
  if (text === undefined) return 30 * 60_000;
  const minutes = Number(text);
  if (!Number.isFinite(minutes) || minutes < 0) throw new CofferError('E_USAGE', `--wait ${text}: give minutes (0: do not wait)`);
  return minutes * 60_000;
}

/** `--repack-threshold 20` (percent, also `20%`) as a share, or undefined for the default. */
export function parseRepackThreshold(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const percent = Number(text.replace(/%$/, ''));
  if (text.trim() === '' || !Number.isFinite(percent) || percent <= 0 || percent > 100) throw new CofferError('E_USAGE', `--repack-threshold ${text}: give a percentage above 0 and at most 100`);
  return percent / 100;
}

const NO_ROOM_FOR_RESERVE = `no room to write back the space reserve (${formatBytes(SPACE_RESERVE_BYTES)}): free space on this disk, or the next time backups fill it prune cannot run`;

/** Runs a prune with progress on stderr (also used by `forget --prune`). */
export async function runPrune(repo: Repository, options: { dryRun: boolean; waitMs: number; json: boolean; repackThreshold?: number }, context: CommandContext): Promise<PruneReport> {
  const progress = ProgressReporter.for(context.stderr, options.json);
  const report = await pruneRepository(repo, {
    dryRun: options.dryRun,
    ...(options.repackThreshold !== undefined ? { repackThreshold: options.repackThreshold } : {}),
    waitMs: options.waitMs,
    signal: context.signal,
    onProgress: (p) => {
      if (p.phase === 'waiting') {
        const who = (p.holders ?? []).map((h) => `${h.kind} on ${h.host} (pid ${h.pid}) since ${h.started}`).join('; ');
        context.stderr.write(`${options.json ? JSON.stringify({ waiting: who }) : `waiting for running backups to end: ${who}`}\n`);
      } else if (p.phase === 'sweep') progress.update({ label: options.dryRun ? 'prune (dry run)' : 'prune', done: p.done, total: p.total });
      else if (p.phase === 'repack') progress.update({ label: 'repack', done: p.done, total: p.total });
    },
  });
  progress.done();
  return report;
}

/** The report as text. */
export function renderPrune(r: PruneReport): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const lines = [`${r.snapshots} snapshot(s) reference ${r.chunksReferenced} chunks and ${r.indexPagesReferenced} index pages`];
  const p = r.packs;
  if (p === undefined) {
    lines.push(
      `${verb} ${r.chunksRemoved} chunk(s), ${r.indexPagesRemoved} index page(s) and ${r.notesRemoved} note(s) no snapshot uses: ${formatBytes(r.bytesFreed)} ${r.dryRun ? 'would be ' : ''}freed`,
      `kept ${r.chunksKept} chunk(s), ${formatBytes(r.bytesKept)}`,
    );
  } else {
    // Format 2: packs.
    lines.push(
      `packs: ${p.packsBefore} before; ${r.dryRun ? 'would delete' : 'deleted'} ${p.packsDeleted}, ${r.dryRun ? 'would repack' : 'repacked'} ${p.packsRepacked}, kept ${p.packsKept}`,
      r.dryRun
        ? `would copy at most ${formatBytes(p.liveBytesInRepacked)} of used chunks into new packs`
        : `wrote ${p.packsWritten} new pack(s): ${p.chunksCopied} chunk(s), ${formatBytes(p.bytesRewritten)} (${p.framesMoved} frame(s) moved as they were, ${p.framesRecompressed} recompressed); index segments: ${p.segmentsRewritten} rewritten, ${p.segmentsRemoved} removed`,
      `${verb} ${r.indexPagesRemoved} index page(s) and ${r.notesRemoved} note(s) no snapshot uses: ${formatBytes(r.bytesFreed)} ${r.dryRun ? 'would be ' : ''}freed`,
    );
    if (p.damagedCopiesDropped > 0) lines.push(`${r.dryRun ? 'would drop' : 'dropped'} ${p.damagedCopiesDropped} damaged cop${p.damagedCopiesDropped === 1 ? 'y' : 'ies'} of chunks verify found damaged (a backup stored them again, or no snapshot uses them): the damaged frames go with their packs`);
    for (const u of p.unreadable) lines.push(`kept ${u.pack} as it is: ${u.message} (run coffer verify --read-data)`);
    const m = r.segments;
    if (m !== undefined && m.segmentsMerged > 0) lines.push(`index segments: ${m.segmentsBefore} before; ${m.segmentsMerged} small one(s) ${r.dryRun ? 'would be merged' : `merged into ${m.segmentsWritten}`}`);
  }
  if (r.tagRecordsRemoved > 0) lines.push(`${verb} ${r.tagRecordsRemoved} tag record(s) (coffer tag) of snapshots forgotten`);
  if (r.quarantineRetired > 0) lines.push(`${r.dryRun ? 'would retire' : 'retired'} the quarantine markers of ${r.quarantineRetired} chunk(s) verify found damaged: their damaged copies are gone, so backups deduplicate against them again instead of storing them once more`);
  if (r.temporaryFilesRemoved !== undefined) lines.push(`removed ${r.temporaryFilesRemoved.files} temporary file(s) of writes that never finished (a process killed while writing): ${formatBytes(r.temporaryFilesRemoved.bytes)}`);
  if (r.stillLocked > 0) lines.push(`${r.stillLocked} object(s) no snapshot uses are still locked (Object Lock): a later prune removes them`);
  if (r.expiredLeasesRemoved > 0) lines.push(`removed ${r.expiredLeasesRemoved} lease(s) of processes that died`);
  const reserve = r.spaceReserve;
  if (reserve?.released === true || reserve?.missing === true) {
    const postponed = r.packs?.repacksPostponed ?? 0;
    const how = reserve.released ? "used the repository's space reserve to delete" : 'found room (the repository had no space reserve) to delete';
    const repacks = postponed > 0 ? `; ${postponed} pack(s) due for a repack found no room and stay as they are (run prune again once there is room)` : r.packs !== undefined ? ', then repacked pack by pack' : '';
    lines.push(`the disk was full: prune ${how} what no snapshot uses first${repacks}`);
  }
  if (reserve?.written === true && !reserve.released) lines.push(`the repository has a space reserve now (${formatBytes(SPACE_RESERVE_BYTES)}), for the next time the disk fills up`);
  if (reserve?.restored === false) lines.push(`warning: ${NO_ROOM_FOR_RESERVE}`);
  return `${lines.join('\n')}\n`;
}
