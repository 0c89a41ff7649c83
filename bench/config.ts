/**
 * The benchmark's settings: every size and path the run uses, derived once from the
 * environment so the rest of the harness never reads `process.env`.
 *
 * Environment:
 * - `BENCH_SCALE` (default 1): shrink every size for a quick smoke run (0.1 gives a
 *   512 MiB disk with ~230 MB of files).
 * - `BENCH_DIR` (default `bench/work`): where disks (cached), repositories and restores live.
 * - `BENCH_TOOLS` (default `coffer,restic,borg`): which tools to run, comma separated.
 * - `BENCH_KEEP=1`: keep the repositories after the run for inspection.
 * - `BENCH_COFFER_INIT_ARGS`: extra `coffer init` options (e.g. `--block-size 64K`).
 * - `BENCH_FORMAT`: the repository format Coffer's repositories are made with (unset: `coffer init`'s
 *   default, 2 — packs; `1`: one object per chunk).
 * - `COFFER_BIN` (default `bin/coffer.js`): the Coffer CLI script to measure.
 *
 * @module
 */
import path from 'node:path';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Names of the tools the benchmark knows how to drive. */
export type ToolName = 'coffer' | 'restic' | 'borg';

/** All tools, in the order they run. */
export const ALL_TOOLS: readonly ToolName[] = ['coffer', 'restic', 'borg'];

/** Everything one benchmark run needs to know; built by {@link loadConfig}. */
export interface BenchConfig {
  /** Size multiplier from `BENCH_SCALE`; 1 is the benchmark the targets are about. */
  readonly scale: number;
  /** The project root. */
  readonly projectRoot: string;
  /** The Coffer CLI script, run with this Node. */
  readonly cofferBin: string;
  /** Root of everything the run writes except results. */
  readonly workDir: string;
  /** Cached disks for this scale; survives between runs. */
  readonly diskDir: string;
  /** Repositories, caches and restores of the current run; wiped at start. */
  readonly runDir: string;
  /** Where the results JSON goes. */
  readonly resultsDir: string;
  /** Virtual size of the test disk (4 GiB at scale 1). */
  readonly diskBytes: number;
  /** Size of the one ext4 partition (3/4 of the disk; the rest is never written). */
  readonly partitionBytes: number;
  /** Bytes of real system files copied into the partition (apparent sizes, 4 KiB rounded). */
  readonly filesBudget: number;
  /** Trees files are copied from, small ones first so each gets a share. */
  readonly sourceTrees: readonly string[];
  /** Number of scattered 4 KiB writes in version (a). */
  readonly scatteredWrites: number;
  /** Size of the one contiguous write in version (a). */
  readonly contiguousBytes: number;
  /** Random bytes written into free space for the clone (c). */
  readonly cloneBytes: number;
  /** Virtual size of the sparse disk for the peak RSS check (16 GiB at scale 1). */
  readonly bigDiskBytes: number;
  /** Tools selected for this run. */
  readonly tools: readonly ToolName[];
  /** Keep repositories after the run. */
  readonly keep: boolean;
  /** Password/passphrase given to every tool's repository. */
  readonly password: string;
}

/** Rounds `n` up to a multiple of `unit`. */
function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}

/**
 * Builds the configuration from environment variables.
 *
 * @param env usually `process.env`
 * @param projectRoot absolute path of the project root
 * @throws Error when `BENCH_SCALE` or `BENCH_TOOLS` is malformed
 */
export function loadConfig(env: NodeJS.ProcessEnv, projectRoot: string): BenchConfig {
  const scale = env.BENCH_SCALE === undefined ? 1 : Number(env.BENCH_SCALE);
  if (!Number.isFinite(scale) || scale <= 0 || scale > 4) {
    throw new Error(`BENCH_SCALE must be a number in (0, 4], got ${env.BENCH_SCALE}`);
  }
  const tools = (env.BENCH_TOOLS ?? ALL_TOOLS.join(','))
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  for (const t of tools) {
    if (!(ALL_TOOLS as readonly string[]).includes(t)) {
      throw new Error(`BENCH_TOOLS: unknown tool "${t}" (known: ${ALL_TOOLS.join(', ')})`);
    }
  }
  const workDir = path.resolve(env.BENCH_DIR ?? path.join(projectRoot, 'bench', 'work'));
  // Scale 0.1 gives 409.6 MiB; a floor of 512 MiB keeps room for ext4's metadata.
  const diskBytes = Math.max(512 * MiB, roundUp(4 * GiB * scale, 64 * MiB));
  return {
    scale,
    projectRoot,
    cofferBin: path.resolve(env.COFFER_BIN ?? path.join(projectRoot, 'bin', 'coffer.js')),
    workDir,
    diskDir: path.join(workDir, `disks-x${scale}`),
    runDir: path.join(workDir, 'run'),
    resultsDir: path.join(projectRoot, 'bench', 'results'),
    diskBytes,
    partitionBytes: (diskBytes / 4) * 3,
    filesBudget: Math.round(2.25 * GiB * scale),
    sourceTrees: [
      '/etc',
      '/usr/bin',
      '/usr/sbin',
      '/usr/include',
      '/usr/libexec',
      '/usr/share',
      '/usr/lib',
    ],
    scatteredWrites: 2000,
    contiguousBytes: 16 * MiB,
    cloneBytes: roundUp(200 * MiB * scale, MiB),
    bigDiskBytes: Math.max(4 * diskBytes, roundUp(16 * GiB * scale, 64 * MiB)),
    tools: ALL_TOOLS.filter((t) => tools.includes(t)),
    keep: env.BENCH_KEEP === '1',
    password: 'coffer-bench',
  };
}
