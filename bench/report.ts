/**
 * Presenting a run: the plain-text tables printed at the end, and the JSON results file.
 *
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ToolName } from './config.js';
import type { BenchReport, StepResult, TargetCheck } from './results.js';
import { STEPS } from './results.js';
import { bestPeer, WALL_TARGETS } from './targets.js';

const MiB = 1024 * 1024;

function pad(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

function padEnd(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** One tool's four cells for a step: wall s, CPU s, peak RSS MiB, MiB added to the repo. */
function cells(r: StepResult | undefined): string {
  if (r === undefined) return padEnd('', 30);
  if (r.error !== undefined) return padEnd('  FAILED', 30);
  const added = r.added === undefined ? '' : (r.added.apparent / MiB).toFixed(1);
  return (
    pad(r.wallS.toFixed(1), 7) +
    pad(r.cpuS.toFixed(1), 7) +
    pad((r.maxRssKiB / 1024).toFixed(0), 6) +
    pad(added, 9) +
    ' '
  );
}

/**
 * The main table: one row per step, per tool wall/CPU/RSS/added, then Coffer's wall time
 * over the best peer's with the target and its result.
 */
export function renderSteps(results: readonly StepResult[], tools: readonly ToolName[]): string {
  const head1 = padEnd('', 16) + tools.map((t) => '| ' + padEnd(t, 29)).join('') + '| coffer/best peer (wall)';
  const head2 =
    padEnd('step', 16) +
    tools.map(() => '|' + pad('wall s', 7) + pad('cpu s', 7) + pad('RSS M', 6) + pad('added M', 9) + ' ').join('') +
    '|  ratio  target  result';
  const lines = [head1, head2, '-'.repeat(head2.length)];
  for (const step of STEPS) {
    const row = tools.map((t) => results.find((r) => r.tool === t && r.step === step));
    if (row.every((r) => r === undefined)) continue;
    let tail = '';
    const coffer = results.find((r) => r.tool === 'coffer' && r.step === step && r.error === undefined);
    const peer = bestPeer(results, step, (r) => r.wallS);
    if (coffer && peer && peer.value > 0) {
      const ratio = coffer.wallS / peer.value;
      const target = WALL_TARGETS.find((t) => t.step === step);
      tail = pad(ratio.toFixed(2), 7) + (target ? pad(`<=${target.limit}`, 8) + (ratio <= target.limit ? '  pass' : '  FAIL') : '');
    }
    lines.push(padEnd(step, 16) + row.map((r) => '|' + cells(r)).join('') + '|' + tail);
  }
  return lines.join('\n');
}

function formatValue(v: number | null, unit: TargetCheck['unit']): string {
  if (v === null) return '-';
  if (unit === 's') return `${v.toFixed(1)} s`;
  if (unit === 'KiB') return `${(v / 1024).toFixed(0)} MiB`;
  return `${(v / MiB).toFixed(1)} MiB`;
}

/** The targets table: every target of the issue with Coffer's number, the reference, the result. */
export function renderTargets(targets: readonly TargetCheck[]): string {
  const lines = [
    padEnd('target', 42) + pad('coffer', 12) + pad('reference', 26) + pad('ratio', 8) + pad('limit', 8) + '  result',
  ];
  lines.push('-'.repeat(lines[0]!.length));
  for (const t of targets) {
    const ref = `${formatValue(t.reference, t.unit)} (${t.referenceLabel})`;
    const result = t.pass === null ? 'n/a' : t.pass ? 'pass' : 'FAIL';
    lines.push(
      padEnd(t.name, 42) +
        pad(formatValue(t.coffer, t.unit), 12) +
        pad(ref, 26) +
        pad(t.ratio === null ? '-' : t.ratio.toFixed(2), 8) +
        pad(`<=${t.limit}`, 8) +
        '  ' +
        result,
    );
  }
  return lines.join('\n');
}

/**
 * Writes the results file as `<dir>/<ISO 8601 basic timestamp>.json`
 * (e.g. `20250101T120000Z.json`: colon-free, sorts by time).
 *
 * @returns the file's path
 */
export async function writeReport(dir: string, report: BenchReport): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const file = path.join(dir, `${stamp}.json`);
  await writeFile(file, JSON.stringify(report, null, 2) + '\n');
  return file;
}
