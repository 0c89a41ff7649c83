/**
 * The prune part's table (prune.ts): per tool, the thirty backups, then forget and prune
 * with wall, CPU, peak RSS and what was freed; then Coffer's own account and its
 * forget + prune wall time over the faster peer's (informative: the issue sets no time
 * target for prune, only asks for it).
 *
 * @module
 */
import type { Measurement } from './exec.js';
import type { PruneResult, PruneToolResult } from './prune.js';

const MiB = 1024 * 1024;

function pad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

function padEnd(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function m3(m: Measurement | undefined): string {
  if (m === undefined) return pad('-', 21);
  return pad(m.wallS.toFixed(1), 7) + pad(m.cpuS.toFixed(1), 7) + pad((m.maxRssKiB / 1024).toFixed(0), 7);
}

function mib(n: number | undefined): string {
  return n === undefined ? '-' : (n / MiB).toFixed(1);
}

/** Forget + prune wall seconds, when both ran. */
export function removalWall(t: PruneToolResult): number | undefined {
  return t.error === undefined && t.forget !== undefined && t.prune !== undefined ? t.forget.wallS + t.prune.wallS : undefined;
}

/** The table printed at the end of the run. */
export function renderPrune(p: PruneResult): string {
  const s = p.settings;
  const title =
    `prune: ${s.days} daily backups of vm1 (${mib(p.bytesWritten)} MiB written in ${p.writes} places over ${s.days - 1} days), ` +
    `forget all but the last ${s.keepDaily} days, prune`;
  const head1 = padEnd('', 8) + '| full  | other days (sum)      | repo M | forget               | prune                | freed M | repo M';
  const head2 = padEnd('tool', 8) + '| wall s| wall s  cpu s  RSS M |  before| wall s  cpu s  RSS M| wall s  cpu s  RSS M|         |  after';
  const lines = [title, head1, head2, '-'.repeat(head2.length)];
  for (const t of p.tools) {
    if (t.error !== undefined) {
      lines.push(padEnd(t.tool, 8) + `| FAILED: ${t.error.split('\n')[0] ?? ''}`);
      continue;
    }
    const freed = t.repoBefore && t.repoAfter ? t.repoBefore.apparent - t.repoAfter.apparent : undefined;
    lines.push(
      padEnd(t.tool, 8) +
        '|' + pad(t.full ? t.full.wallS.toFixed(1) : '-', 6) + ' ' +
        '|' + m3(t.daily) + ' ' +
        '|' + pad(mib(t.repoBefore?.apparent), 7) + ' ' +
        '|' + m3(t.forget) +
        '|' + m3(t.prune) +
        '|' + pad(mib(freed), 8) + ' ' +
        '|' + pad(mib(t.repoAfter?.apparent), 7),
    );
  }
  const coffer = p.tools.find((t) => t.tool === 'coffer');
  const r = coffer?.reported;
  if (r !== undefined && typeof r.chunksRemoved === 'number') {
    lines.push(
      `coffer's prune: removed ${String(r.chunksRemoved)} chunks and ${String(r.indexPagesRemoved)} index pages ` +
        `(${mib(Number(r.bytesFreed))} MiB), kept ${String(r.chunksKept)} chunks (${mib(Number(r.bytesKept))} MiB) of ${String(r.snapshots)} snapshots`,
    );
  }
  const mine = coffer === undefined ? undefined : removalWall(coffer);
  const peers = p.tools.filter((t) => t.tool !== 'coffer').map((t) => ({ tool: t.tool, wall: removalWall(t) }));
  const best = peers.filter((x) => x.wall !== undefined).sort((a, b) => a.wall! - b.wall!)[0];
  if (mine !== undefined && best?.wall !== undefined && best.wall > 0) {
    lines.push(`forget + prune wall, coffer / ${best.tool}: ${(mine / best.wall).toFixed(2)} (${mine.toFixed(1)} s / ${best.wall.toFixed(1)} s; no target)`);
  }
  return lines.join('\n');
}
