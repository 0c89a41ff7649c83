/**
 * The prune part of the benchmark (issue #6; `BENCH_PRUNE=0` skips it): thirty daily backups
 * of the benchmark VM, then forget what "keep the newest backup of each of the last 15 days"
 * does not keep (half of them) and free the space. Coffer's prune time and peak memory are
 * what the issue asks for; restic (`forget --keep-daily` + `prune`) and borg (`prune
 * --keep-daily` + `compact`) do the same on the same thirty disks, for comparison.
 *
 * The thirty disks are one working copy of the base, changed in place by daily.ts between
 * two days. Each day, every tool backs it up in turn (same bytes, same warm page cache),
 * with the day's date as the backup's time (`2026-01-01T03:00:00Z` + day). No tool gets
 * change tracking, as in the main part. Before forget and before prune the repository is
 * read once and `sync` runs, like every measured step.
 *
 * @module
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BenchConfig, ToolName } from './config.js';
import { applyDay, dataBlocks, type DailyChurn } from './daily.js';
import type { DiskLayout } from './disk.js';
import { run, type Measurement } from './exec.js';
import { settle, treeSize, warm, type TreeSize } from './measure.js';
import type { BackupTool } from './tools.js';

/** The prune part's settings. */
export interface PruneSettings {
  /** Daily backups taken (30). */
  readonly days: number;
  /** Days `forget --keep-daily` keeps (15: half of them go). */
  readonly keepDaily: number;
  readonly churn: DailyChurn;
}

/** The defaults: thirty days, keep fifteen, ≈10 MiB of writes on ≈50 places a day. */
export const PRUNE_SETTINGS: PruneSettings = {
  days: 30,
  keepDaily: 15,
  churn: { scattered: 40, runs: 2, maxRunBytes: 8 * 1024 * 1024 },
};

/** Sum of several measurements: wall and CPU add up, RSS is the largest. */
export interface MeasurementSum extends Measurement {
  readonly count: number;
}

/** One tool's month and its prune. */
export interface PruneToolResult {
  readonly tool: ToolName;
  /** The first day's backup (a full). */
  readonly full?: Measurement;
  /** The other days' backups, summed. */
  readonly daily?: MeasurementSum;
  /** Repository after all the backups. */
  readonly repoBefore?: TreeSize;
  /** Removing the backups the policy does not keep (coffer forget, restic forget, borg prune). */
  readonly forget?: Measurement;
  /** Freeing their data (coffer prune, restic prune, borg compact). */
  readonly prune?: Measurement;
  /** Repository after the prune. */
  readonly repoAfter?: TreeSize;
  /** The tool's own account of the prune (Coffer: its PruneReport). */
  readonly reported?: Record<string, unknown>;
  /** Set when a step failed; later steps did not run. */
  readonly error?: string;
}

/** The whole part, as stored under `prune` in the results JSON. */
export interface PruneResult {
  readonly settings: PruneSettings;
  /** Bytes the days wrote into the disk, all days together (day 0 writes nothing). */
  readonly bytesWritten: number;
  /** Write calls of all days. */
  readonly writes: number;
  readonly tools: readonly PruneToolResult[];
}

const VM = 'vm1';
const FIRST_DAY = Date.parse('2026-01-01T03:00:00Z');
const DAY_MS = 86_400_000;

function add(sum: MeasurementSum | undefined, m: Measurement): MeasurementSum {
  if (sum === undefined) return { ...m, count: 1 };
  return { wallS: sum.wallS + m.wallS, cpuS: sum.cpuS + m.cpuS, maxRssKiB: Math.max(sum.maxRssKiB, m.maxRssKiB), count: sum.count + 1 };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function seconds(m: Measurement): string {
  return `${m.wallS.toFixed(1)} s wall, ${m.cpuS.toFixed(1)} s cpu, ${(m.maxRssKiB / 1024).toFixed(0)} MiB RSS`;
}

/**
 * Runs the part for each tool (each with its own fresh repository, `repoOf(tool)`).
 *
 * @param tools adapters whose repositories do not exist yet
 * @param log receives a line per day and per step
 */
export async function runPrune(
  cfg: BenchConfig,
  opts: {
    tools: readonly BackupTool[];
    repoOf: (tool: ToolName) => string;
    base: string;
    layout: DiskLayout;
    settings?: PruneSettings;
    log: (line: string) => void;
  },
): Promise<PruneResult> {
  const { tools, repoOf, base, layout, log } = opts;
  const settings = opts.settings ?? PRUNE_SETTINGS;
  const dir = path.join(cfg.runDir, 'prune');
  const disk = path.join(dir, 'vms', VM, 'disk.raw');
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.dirname(disk), { recursive: true });
  log(`prune: ${settings.days} daily backups, then keep ${settings.keepDaily} days; copying the base to a working disk`);
  await run('cp', ['--sparse=always', base, disk]);
  const blocks = await dataBlocks(base, layout);

  const state = new Map<ToolName, { -readonly [K in keyof PruneToolResult]: PruneToolResult[K] }>();
  for (const tool of tools) state.set(tool.name, { tool: tool.name });
  const fail = (tool: BackupTool, what: string, err: unknown): void => {
    const s = state.get(tool.name)!;
    s.error = `${what}: ${message(err)}`;
    log(`  ${tool.name} ${what}: ${message(err)}`);
  };
  const alive = (): BackupTool[] => tools.filter((t) => state.get(t.name)!.error === undefined);

  for (const tool of tools) {
    await mkdir(path.dirname(repoOf(tool.name)), { recursive: true });
    await tool.init().catch((err: unknown) => fail(tool, 'init', err));
  }
  let bytesWritten = 0;
  let writes = 0;
  try {
    for (let day = 0; day < settings.days; day++) {
      if (day > 0) {
        const change = await applyDay(disk, layout, blocks, settings.churn, day);
        bytesWritten += change.bytesWritten;
        writes += change.writes;
      }
      const time = new Date(FIRST_DAY + day * DAY_MS);
      const tag = `day-${String(day).padStart(2, '0')}`;
      await warm([disk]);
      const line: string[] = [];
      for (const tool of alive()) {
        await settle();
        try {
          const out = await tool.backup(VM, disk, tag, time);
          const s = state.get(tool.name)!;
          if (day === 0) s.full = out.m;
          else s.daily = add(s.daily, out.m);
          line.push(`${tool.name} ${out.m.wallS.toFixed(1)} s`);
        } catch (err) {
          fail(tool, `backup ${tag}`, err);
        }
      }
      log(`  ${tag} (${time.toISOString().slice(0, 10)}): ${line.join(', ')}`);
    }
  } finally {
    await rm(disk, { force: true });
  }

  for (const tool of alive()) {
    const s = state.get(tool.name)!;
    const repo = repoOf(tool.name);
    try {
      s.repoBefore = await treeSize(repo);
      await warm([repo]);
      await settle();
      s.forget = await tool.forget(VM, settings.keepDaily);
      log(`  ${tool.name} forget: ${seconds(s.forget)}`);
      await warm([repo]);
      await settle();
      const pruned = await tool.prune();
      s.prune = pruned.m;
      s.reported = pruned.reported;
      s.repoAfter = await treeSize(repo);
      const freed = (s.repoBefore.apparent - s.repoAfter.apparent) / 2 ** 20;
      log(`  ${tool.name} prune: ${seconds(s.prune)}, ${freed.toFixed(1)} MiB freed`);
    } catch (err) {
      fail(tool, s.forget === undefined ? 'forget' : 'prune', err);
    }
    if (!cfg.keep) await rm(path.dirname(repo), { recursive: true, force: true });
  }
  if (!cfg.keep) await rm(dir, { recursive: true, force: true });
  return { settings, bytesWritten, writes, tools: tools.map((t) => state.get(t.name)!) };
}
