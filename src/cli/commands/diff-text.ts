/** The text form of `coffer diff` (the JSON form is the core's report as it is). */
import { printableName, printableText } from '../../names/index.js';
import type { Snapshot } from '../../repo/index.js';
import type { ChangeCounts, DiffProblem, DisksDiff, PathChange, VolumeFilesDiff, VolumeInfo } from '../../restore/index.js';
import { formatBytes } from '../format.js';

/** Changed ranges listed per disk; the rest is counted (`--json` lists every one). */
export const RANGES_SHOWN = 20;

/** `comparing 1a2b3c4d (web01, 2026-11-29 01:00:00Z) with 5e6f7a8b (web01, …)`. */
export function snapshotLine(a: Snapshot, b: Snapshot): string {
  const name = (s: Snapshot) => `${s.id.slice(0, 8)} (${s.vm}, ${s.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z')})`;
  return `comparing ${name(a)} with ${name(b)}`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Each disk (added, removed, resized, its changed ranges), then the totals. */
export function disksText(diff: DisksDiff): string {
  const lines: string[] = [];
  for (const d of diff.disks) {
    if (d.change === 'added') {
      lines.push(`+ ${d.name}: added (${formatBytes(d.sizeB)})`);
      continue;
    }
    if (d.change === 'removed') {
      lines.push(`- ${d.name}: removed (${formatBytes(d.sizeA)})`);
      continue;
    }
    const size = d.sizeA === d.sizeB ? formatBytes(d.sizeB) : `resized from ${formatBytes(d.sizeA)} to ${formatBytes(d.sizeB)}`;
    if (d.changedBlocks === 0) {
      lines.push(`${d.change === 'unchanged' ? ' ' : 'M'} ${d.name}: ${size}, no block changed`);
      continue;
    }
    const zeroed = d.zeroedBlocks > 0 ? `, ${d.zeroedBlocks} of them now zeros` : '';
    lines.push(`M ${d.name}: ${size}, ${formatBytes(d.changedBytes)} changed in ${plural(d.changedBlocks, 'block')} of ${formatBytes(d.blockSize)}${zeroed}, ${plural(d.ranges.length, 'range')}:`);
    for (const r of d.ranges.slice(0, RANGES_SHOWN)) {
      lines.push(`    at ${formatBytes(r.offset).padStart(10)}  ${formatBytes(r.length).padStart(10)}   bytes ${r.offset}-${r.offset + r.length - 1}`);
    }
    if (d.ranges.length > RANGES_SHOWN) lines.push(`    … and ${plural(d.ranges.length - RANGES_SHOWN, 'more range')} (--json lists every one)`);
  }
  const t = diff.totals;
  const others = [t.disksAdded > 0 ? `${plural(t.disksAdded, 'disk')} added` : '', t.disksRemoved > 0 ? `${plural(t.disksRemoved, 'disk')} removed` : '', t.disksResized > 0 ? `${plural(t.disksResized, 'disk')} resized` : ''].filter((s) => s !== '');
  lines.push('');
  lines.push(`total: ${formatBytes(t.changedBytes)} changed in ${plural(t.changedBlocks, 'block')}${t.zeroedBlocks > 0 ? ` (${t.zeroedBlocks} now zeros)` : ''} on ${plural(t.disksChanged, 'disk')}${others.length > 0 ? `; ${others.join(', ')}` : ''}`);
  lines.push(`(read ${plural(t.pagesRead, 'index page')}, skipped ${t.pagesSkipped} shared by both; no data read)`);
  return `${lines.join('\n')}\n`;
}

/** `M    /etc/passwd`, `+    /srv/new/` (a folder ends in /), `T    /x/ (was a file)`. */
export function changeLine(change: PathChange): string {
  const slash = change.type === 'directory' ? '/' : '';
  const was = change.change === 'T' && change.was !== undefined ? `  (was a ${change.was === 'directory' ? 'folder' : change.was})` : '';
  return `${change.change}    ${printableName(change.path)}${slash}${was}`;
}

/** A path that could not be compared, for stderr. */
export function problemLine(problem: DiffProblem): string {
  return `coffer: ${printableText(problem.message.startsWith(problem.path) ? problem.message : `${problem.path}: ${problem.message}`)}`;
}

/** The counts, one line per kind: `Files:  2 added, 1 removed, 3 modified, 0 type changed, 1 metadata only`. */
export function countsText(counts: ChangeCounts): string {
  const row = (label: string, r: ChangeCounts['files']) => `${label.padEnd(9)}${r['+']} added, ${r['-']} removed, ${r.M} modified, ${r.T} type changed, ${r.U} metadata only`;
  return [row('Files:', counts.files), row('Folders:', counts.directories), row('Others:', counts.others)].join('\n');
}

/** `volume p1 on disk0 (ext4): 1.25 MiB changed`, `volume p2 on disk0: unchanged (not read)`. */
export function volumeHeader(info: VolumeInfo): string {
  const name = `volume ${printableText(info.volume)} on ${printableText(info.disk)}${info.filesystem !== undefined ? ` (${info.filesystem})` : ''}`;
  switch (info.change) {
    case 'added':
      return `+ ${name}: added`;
    case 'removed':
      return `- ${name}: removed`;
    case 'unchanged':
      return `  ${name}: no byte changed (not read)`;
    case 'not compared':
      return `? ${name}: ${formatBytes(info.changedBytes)} changed, files not compared: ${printableText(info.problem ?? '')}`;
    default:
      return `M ${name}: ${formatBytes(info.changedBytes)} changed:`;
  }
}

/** A compared volume's counts, the sizes of files added and removed, and what telling content cost. */
export function volumeSummary(result: VolumeFilesDiff, counts: ChangeCounts): string {
  const lines = [countsText(counts)];
  lines.push(`Added:   ${formatBytes(result.bytesAdded)} in new files\nRemoved: ${formatBytes(result.bytesRemoved)} in removed files`);
  const c = result.checks;
  if (c !== undefined && c.filesRead > 0) lines.push(`(read ${formatBytes(c.bytesRead)} of ${plural(c.filesRead, 'file')} in both snapshots where changed blocks cross them, to tell)`);
  if (c !== undefined && c.unchecked > 0) lines.push(`(${plural(c.unchecked, 'file')} of unchanged size and metadata not checked: this filesystem reader cannot tell where files lie)`);
  return lines.map((l) => l.split('\n').map((x) => `  ${x}`).join('\n')).join('\n');
}

