/**
 * The targets, as data, and their check against one run's results. Time targets
 * compare Coffer with the better (lower) of restic and borg in the same run.
 *
 * @module
 */
import type { FileStep, FilesResult } from './files.js';
import type { PruneResult } from './prune.js';
import type { StepName, StepResult, TargetCheck } from './results.js';

const MiB_IN_KiB = 1024;

/** Wall-time targets: Coffer's wall time / best peer's ≤ limit. */
export const WALL_TARGETS: ReadonlyArray<{ step: StepName; name: string; limit: number }> = [
  { step: 'full', name: 'full backup wall time', limit: 0.33 },
  { step: 'incr-scattered', name: 'incremental (scattered) wall time', limit: 0.25 },
  { step: 'incr-clustered', name: 'incremental (clustered) wall time', limit: 0.25 },
  { step: 'restore', name: 'restore wall time', limit: 0.4 },
  { step: 'verify', name: 'verify all data wall time', limit: 0.5 },
];

/** Peak RSS Coffer may use in any step, in KiB (256 MiB). */
export const RSS_LIMIT_KiB = 256 * MiB_IN_KiB;

/** How much more the 16 GiB sparse full may use than the 4 GiB full ("the same"). */
export const RSS_GROWTH_LIMIT = 1.1;

function find(results: readonly StepResult[], tool: string, step: StepName): StepResult | undefined {
  return results.find((r) => r.tool === tool && r.step === step && r.error === undefined);
}

function check(
  name: string,
  unit: TargetCheck['unit'],
  coffer: number | undefined,
  ref: number | undefined,
  label: string,
  limit: number,
): TargetCheck {
  const ratio = coffer !== undefined && ref !== undefined && ref > 0 ? coffer / ref : null;
  return {
    name,
    unit,
    coffer: coffer ?? null,
    reference: ref ?? null,
    referenceLabel: label,
    ratio,
    limit,
    pass: ratio === null ? null : ratio <= limit,
  };
}

/** The best (lowest) peer value of a metric at a step, with the peer's name. */
export function bestPeer(
  results: readonly StepResult[],
  step: StepName,
  metric: (r: StepResult) => number | undefined,
): { value: number; tool: string } | undefined {
  let best: { value: number; tool: string } | undefined;
  for (const tool of ['restic', 'borg']) {
    const r = find(results, tool, step);
    const v = r ? metric(r) : undefined;
    if (v !== undefined && (best === undefined || v < best.value)) best = { value: v, tool };
  }
  return best;
}

/** Checks every target against the results of one run. */
export function evaluateTargets(results: readonly StepResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const t of WALL_TARGETS) {
    const peer = bestPeer(results, t.step, (r) => r.wallS);
    checks.push(check(t.name, 's', find(results, 'coffer', t.step)?.wallS, peer?.value, peer?.tool ?? 'best peer', t.limit));
  }
  const repoAfterFull = (tool: string): number | undefined => find(results, tool, 'full')?.repo?.apparent;
  checks.push(check('repository size after the full', 'B', repoAfterFull('coffer'), repoAfterFull('borg'), 'borg', 1.05));
  const added = bestPeer(results, 'incr-scattered', (r) => r.added?.apparent);
  checks.push(
    check(
      'bytes added by the scattered incremental',
      'B',
      find(results, 'coffer', 'incr-scattered')?.added?.apparent,
      added?.value,
      added?.tool ?? 'best peer',
      0.5,
    ),
  );
  const cofferSteps = results.filter((r) => r.tool === 'coffer' && r.error === undefined && r.step !== 'full-16g');
  const peakRss = cofferSteps.length > 0 ? Math.max(...cofferSteps.map((r) => r.maxRssKiB)) : undefined;
  checks.push(check('peak RSS, any 4 GiB step', 'KiB', peakRss, RSS_LIMIT_KiB, 'limit', 1));
  const big = find(results, 'coffer', 'full-16g')?.maxRssKiB;
  checks.push(check('peak RSS, 16 GiB sparse full', 'KiB', big, RSS_LIMIT_KiB, 'limit', 1));
  checks.push(check('peak RSS, 16 GiB vs 4 GiB full', 'KiB', big, find(results, 'coffer', 'full')?.maxRssKiB, 'coffer 4 GiB', RSS_GROWTH_LIMIT));
  return checks;
}

/**
 * The prune part's target (issue #6 asks for prune's time and peak memory; the memory limit
 * is the one every 4 GiB step has): Coffer's largest RSS of its forget and its prune.
 */
export function pruneTargets(prune: PruneResult): TargetCheck[] {
  const coffer = prune.tools.find((t) => t.tool === 'coffer' && t.error === undefined);
  const rss = coffer?.forget !== undefined && coffer.prune !== undefined ? Math.max(coffer.forget.maxRssKiB, coffer.prune.maxRssKiB) : undefined;
  return [check(`peak RSS, forget + prune of ${prune.settings.days} days`, 'KiB', rss, RSS_LIMIT_KiB, 'limit', 1)];
}

/**
 * The file-backup part's targets (issue #11), each against the better (lower) of restic and
 * borg in the same run: full, incremental and restore wall time, and the repository's size
 * after the full.
 */
export const FILE_TARGETS: ReadonlyArray<{ step: FileStep; name: string; metric: 'wall' | 'repo'; limit: number }> = [
  { step: 'full', name: 'files: full backup wall time', metric: 'wall', limit: 0.5 },
  { step: 'incremental', name: 'files: incremental wall time', metric: 'wall', limit: 0.3 },
  { step: 'restore', name: 'files: restore wall time', metric: 'wall', limit: 0.5 },
  { step: 'full', name: 'files: repository size after the full', metric: 'repo', limit: 1.05 },
];

/** Checks the file-backup part's targets. */
export function filesTargets(files: FilesResult): TargetCheck[] {
  return FILE_TARGETS.map((t) => {
    const value = (tool: string): number | undefined => {
      const r = files.results.find((x) => x.tool === tool && x.step === t.step && x.error === undefined);
      return r === undefined ? undefined : t.metric === 'wall' ? r.wallS : r.repo.apparent;
    };
    let best: { value: number; tool: string } | undefined;
    for (const tool of ['restic', 'borg']) {
      const v = value(tool);
      if (v !== undefined && (best === undefined || v < best.value)) best = { value: v, tool };
    }
    return check(t.name, t.metric === 'wall' ? 's' : 'B', value('coffer'), best?.value, best?.tool ?? 'best peer', t.limit);
  });
}
