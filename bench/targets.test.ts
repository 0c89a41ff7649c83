import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ToolName } from './config.js';
import type { StepName, StepResult } from './results.js';
import type { FileStepResult, FilesResult } from './files.js';
import { evaluateTargets, filesTargets, pruneTargets } from './targets.js';

function r(tool: ToolName, step: StepName, wallS: number, extra: Partial<StepResult> = {}): StepResult {
  return { tool, step, wallS, cpuS: wallS, maxRssKiB: 100 * 1024, ...extra };
}

const cases: Array<{ name: string; results: StepResult[]; target: string; ratio: number | null; pass: boolean | null }> = [
  {
    name: 'compares with the faster peer',
    results: [r('coffer', 'full', 3), r('restic', 'full', 10), r('borg', 'full', 12)],
    target: 'full backup wall time',
    ratio: 0.3,
    pass: true,
  },
  {
    name: 'a failed peer step does not count',
    results: [r('coffer', 'full', 3), r('restic', 'full', 0, { error: 'boom' }), r('borg', 'full', 6)],
    target: 'full backup wall time',
    ratio: 0.5,
    pass: false,
  },
  {
    name: 'no Coffer number: not decided',
    results: [r('restic', 'verify', 10)],
    target: 'verify all data wall time',
    ratio: null,
    pass: null,
  },
  {
    name: 'repository size is compared with borg, not the best peer',
    results: [
      r('coffer', 'full', 1, { repo: { apparent: 105, allocated: 0 } }),
      r('restic', 'full', 1, { repo: { apparent: 50, allocated: 0 } }),
      r('borg', 'full', 1, { repo: { apparent: 100, allocated: 0 } }),
    ],
    target: 'repository size after the full',
    ratio: 1.05,
    pass: true,
  },
  {
    name: 'bytes added use the smaller peer',
    results: [
      r('coffer', 'incr-scattered', 1, { added: { apparent: 30, allocated: 0 } }),
      r('restic', 'incr-scattered', 1, { added: { apparent: 40, allocated: 0 } }),
      r('borg', 'incr-scattered', 1, { added: { apparent: 80, allocated: 0 } }),
    ],
    target: 'bytes added by the scattered incremental',
    ratio: 0.75,
    pass: false,
  },
  {
    name: 'the big sparse disk may use 10% more memory than the 4 GiB one',
    results: [r('coffer', 'full', 1, { maxRssKiB: 200 * 1024 }), r('coffer', 'full-16g', 1, { maxRssKiB: 210 * 1024 })],
    target: 'peak RSS, 16 GiB vs 4 GiB full',
    ratio: 1.05,
    pass: true,
  },
];

for (const c of cases) {
  test(`evaluateTargets: ${c.name}`, () => {
    const t = evaluateTargets(c.results).find((x) => x.name === c.target);
    assert.ok(t, `target "${c.target}" exists`);
    assert.equal(t.pass, c.pass);
    if (c.ratio === null) assert.equal(t.ratio, null);
    else assert.ok(Math.abs((t.ratio ?? NaN) - c.ratio) < 1e-9, `ratio ${t.ratio}`);
  });
}

test('pruneTargets: the larger RSS of forget and prune is held to the 256 MiB limit', () => {
  const m = (rssMiB: number) => ({ wallS: 1, cpuS: 1, maxRssKiB: rssMiB * 1024 });
  const settings = { days: 30, keepDaily: 15, churn: { scattered: 1, runs: 1, maxRunBytes: 4096 } };
  const coffer = (forget: number, prune: number) => ({ tool: 'coffer' as const, forget: m(forget), prune: m(prune) });
  const [ok] = pruneTargets({ settings, bytesWritten: 0, writes: 0, tools: [coffer(250, 100)] });
  assert.equal(ok?.pass, true);
  const [over] = pruneTargets({ settings, bytesWritten: 0, writes: 0, tools: [coffer(100, 300)] });
  assert.equal(over?.pass, false);
  assert.ok(Math.abs((over?.ratio ?? 0) - 300 / 256) < 1e-9);
  const [failed] = pruneTargets({ settings, bytesWritten: 0, writes: 0, tools: [{ ...coffer(1, 1), error: 'prune: boom' }] });
  assert.equal(failed?.pass, null);
});

test('file part: times and the repository size against the better of restic and borg; a failed step does not count', () => {
  const f = (tool: ToolName, step: FileStepResult['step'], wallS: number, repo: number, error?: string): FileStepResult => ({
    tool, step, wallS, cpuS: wallS, maxRssKiB: 1024, repo: { apparent: repo, allocated: repo }, ...(error === undefined ? {} : { error }),
  });
  const files = {
    results: [
      f('coffer', 'full', 4, 103), f('restic', 'full', 10, 120), f('borg', 'full', 8, 100),
      f('coffer', 'incremental', 1, 0), f('restic', 'incremental', 2, 0), f('borg', 'incremental', 0, 0, 'boom'),
      f('restic', 'restore', 5, 0),
    ],
  } as unknown as FilesResult;
  const checks = new Map(filesTargets(files).map((c) => [c.name, c]));
  assert.deepEqual([checks.get('files: full backup wall time')?.ratio, checks.get('files: full backup wall time')?.referenceLabel, checks.get('files: full backup wall time')?.pass], [0.5, 'borg', true]);
  assert.deepEqual([checks.get('files: incremental wall time')?.ratio, checks.get('files: incremental wall time')?.referenceLabel, checks.get('files: incremental wall time')?.pass], [0.5, 'restic', false]);
  assert.equal(checks.get('files: restore wall time')?.pass, null); // no Coffer number
  assert.deepEqual([checks.get('files: repository size after the full')?.ratio, checks.get('files: repository size after the full')?.pass], [1.03, true]);
});
