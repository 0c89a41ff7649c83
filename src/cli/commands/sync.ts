import { CofferError } from '../../errors/index.js';
import { parseRetentionDuration, subtractDuration, syncSnapshots, type SyncReport } from '../../repo/index.js';
import { bandwidthLimits } from '../bandwidth.js';
import { openFromOptions, type CommandContext, type RepositoryOptions } from '../context.js';
import { exitCodeOf } from '../exit-codes.js';
import { formatBytes } from '../format.js';
import { ProgressReporter } from '../progress.js';

export interface SyncCommandOptions extends RepositoryOptions {
  to?: string;
  toPasswordFile?: string;
  vm?: string;
  since?: string;
  check?: boolean;
  readData?: boolean;
}

/**
 * `coffer sync -r SRC --to DST [--vm NAME] [--since DURATION] [--check|--read-data]
 * [--limit-upload R] [--limit-download R] [--json]`: copies the snapshots the destination
 * lacks; with `--check` it also makes the copies already there whole (chunks missing there,
 * or with `--read-data` damaged, are sent again; a file snapshot's trees that do not read are
 * stored again). The source's passphrase comes as for every command; the destination's from
 * `--to-password-file`, `$COFFER_TO_PASSWORD` or `$COFFER_TO_PASSWORD_FILE`. Exit 0 when
 * every selected snapshot is in the destination, whole, else the exit code of the first
 * failure (11: the source is damaged, or a copy's index page is; 13: a copy did not read back intact).
 */
export async function syncCommand(options: SyncCommandOptions, context: CommandContext): Promise<number> {
  if (options.to === undefined || options.to === '') throw new CofferError('E_USAGE', 'no destination given: use --to PATH');
  const now = new Date();
  const since = options.since === undefined ? undefined : new Date(subtractDuration(now.getTime(), parseRetentionDuration(options.since)));
  const limits = bandwidthLimits(options); // one budget per direction for both repositories
  const src = await openFromOptions(options, context, { limits });
  try {
    const dst = await openFromOptions({ repo: options.to, ...(options.toPasswordFile !== undefined ? { passwordFile: options.toPasswordFile } : {}) }, context, { limits, variable: 'COFFER_TO_PASSWORD' });
    try {
      const progress = ProgressReporter.for(context.stderr, options.json === true);
      const report = await syncSnapshots(src, dst, {
        vm: options.vm,
        vmMustExist: true,
        since,
        check: options.check === true,
        readData: options.readData === true,
        signal: context.signal,
        onWait: (holders) => {
          const who = holders.map((h) => `${h.kind} on ${h.host} (pid ${h.pid}) since ${h.started}`).join('; ');
          context.stderr.write(`${options.json ? JSON.stringify({ waiting: who }) : `waiting for a prune of the destination to end: ${who}`}\n`);
        },
        onProgress: (p) =>
          progress.update({ label: `sync ${p.vm} (${p.index}/${p.snapshots})`, done: p.done, total: p.total, figures: { sent: p.counters.chunkBytesSent, read: p.counters.bytesRead } }),
      });
      progress.done();
      context.stdout.write(options.json ? `${JSON.stringify(report)}\n` : renderSync(report));
      const failure = report.snapshots.find((s) => s.error !== undefined)?.error;
      return failure === undefined ? 0 : exitCodeOf(failure.code);
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

/** The report as text. */
export function renderSync(r: SyncReport): string {
  const lines = [
    `${r.source} → ${r.destination}${r.sameKeys ? ' (same keys: objects copied as stored)' : ''}`,
    `${r.copied} snapshot(s) copied, ${r.present} already there, ${r.healed > 0 ? `${r.healed} healed, ` : ''}${r.failed} failed${r.skipped > 0 ? `, ${r.skipped} skipped` : ''}`,
    `sent ${r.chunksSent} chunk(s), ${formatBytes(r.chunkBytesSent)}, and ${r.indexPagesSent} index page(s), ${formatBytes(r.indexBytesSent)}; ${r.chunksPresent} chunk(s) read were there already; ${r.chunksReused} chunk(s) and ${r.indexPagesReused} index page(s) reused unread from earlier copies`,
    `read ${formatBytes(r.bytesRead)} from the source; wrote ${formatBytes(r.bytesWritten)} to the destination and read it back intact`,
  ];
  if (r.packsWritten + r.packsCopied > 0) lines.splice(3, 0, `format 2: wrote ${r.packsWritten} new pack(s) for re-packed chunks, copied ${r.packsCopied} pack(s) whole`);
  if (r.treesSent + r.treesReused > 0) lines.splice(3, 0, `file snapshots: sent ${r.treesSent} tree(s), ${formatBytes(r.treeBytesSent)}; ${r.treesReused} tree(s) reused unread`);
  // A checked copy that failed could not be made whole (the source lost the chunk too, or the copy's index page is damaged).
  const unhealed = r.snapshots.filter((s) => s.status === 'failed' && s.destination !== null).length;
  if (r.chunksChecked > 0 || unhealed > 0) {
    const found = [
      ...(r.chunksHealed > 0 ? [`${r.chunksHealed} missing or damaged, sent again`] : []),
      ...(r.treesHealed > 0 ? [`${r.treesHealed} file tree(s) missing or damaged, stored again`] : []),
      ...(unhealed > 0 ? [`${unhealed} cop${unhealed === 1 ? 'y' : 'ies'} could not be made whole (FAILED below)`] : []),
    ];
    lines.splice(-1, 0, `checked ${r.chunksChecked} chunk(s) of the copies already there: ${found.length === 0 ? 'all held' : found.join('; ')}`);
  }
  for (const s of r.snapshots) {
    if (s.status === 'healed') {
      const trees = (s.treesHealed ?? 0) > 0 ? ` and ${s.treesHealed} tree(s)` : '';
      lines.push(`healed  ${s.source.slice(0, 8)} → ${s.destination?.slice(0, 8)}  ${s.vm}  ${s.time}: ${s.chunksHealed ?? 0} chunk(s)${trees} missing or damaged in the destination, sent again`);
    }
    else if (s.status === 'failed' && s.destination !== null) lines.push(`FAILED  ${s.source.slice(0, 8)} → ${s.destination.slice(0, 8)}  ${s.vm}  ${s.time}: ${s.error?.message ?? ''}`);
    else if (s.status === 'copied') lines.push(`copied  ${s.source.slice(0, 8)} → ${s.destination?.slice(0, 8)}  ${s.vm}  ${s.time}`);
    else if (s.status === 'failed') lines.push(`FAILED  ${s.source.slice(0, 8)}  ${s.vm}  ${s.time}: ${s.error?.message ?? ''}`);
    else if (s.status === 'skipped') lines.push(`SKIPPED ${s.source.slice(0, 8)}  ${s.vm}  ${s.time}: ${s.error?.message ?? ''}`);
    if (s.tagsCarried !== undefined) lines.push(`tagged  ${s.source.slice(0, 8)} → ${s.destination?.slice(0, 8)}  ${s.vm}  ${s.time}: ${s.tagsCarried.length === 0 ? '(no tags)' : s.tagsCarried.join(',')}, as coffer tag set them on the source`);
    if (s.tagsRefused !== undefined) lines.push(`NOT TAGGED ${s.source.slice(0, 8)} → ${s.destination?.slice(0, 8)}  ${s.vm}  ${s.time}: the destination refused the tags coffer tag set on the source (${s.tagsRefused.length === 0 ? 'no tags' : s.tagsRefused.join(',')}): tag the copy with a full-access token`);
  }
  return `${lines.join('\n')}\n`;
}
