/**
 * The file-backup part (issue #11; `BENCH_FILES=0` skips it): Coffer's `backup --files`
 * against restic and borg on the same directory tree (file-tree.ts: ≈2 GiB in ≈50,000 files
 * at scale 1), in one run.
 *
 * The cached tree is copied (`cp -a`) to `BENCH_DIR/run/files/tree`, the path every tool
 * backs up. Then, each step for each tool in turn, each alone:
 *
 * | step          | what                                                                     |
 * |---------------|--------------------------------------------------------------------------|
 * | `full`        | the first backup, in a fresh encrypted repository                        |
 * | `incremental` | after applyFileChanges: each tool finds unchanged files by their metadata |
 * | `restore`     | the newest backup into an empty directory, compared with the tree (`diff -r`, untimed) |
 *
 * Settings: Coffer's defaults (`backup --files TREE --host bench`; `BENCH_FORMAT=2`: a
 * format 2 repository, packs); restic 0.14 repository
 * v2 with its default compression (`backup --host bench TREE`, its files cache finds the
 * parent by host and path); borg 1.2 `init -e repokey`, `create --compression zstd,3` with
 * its default files cache. Everything runs warm, as in the main part: the tree (or, before
 * a restore, the repository) is read once and `sync` runs before each measured command.
 * Repository sizes are `du -sb`.
 *
 * Each tool restores into a directory of its own, and the restored trees are deleted only
 * once every tool has restored: ext4 creates files slowly for minutes after tens of thousands
 * were deleted (its inode allocator skips recently freed inodes), so deleting one tool's
 * restore before the next one ran made the next one slower (restic 19.0 s after Coffer's
 * tree was deleted, ~11 s on a quiet filesystem; 2026-11-27).
 *
 * @module
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BenchConfig, ToolName } from './config.js';
import { run, timed, type Measurement } from './exec.js';
import { applyFileChanges, ensureFileTree, type FileChanges, type FileTreeLayout } from './file-tree.js';
import { settle, treeSize, warm, type TreeSize } from './measure.js';

/** The steps of the part. */
export const FILE_STEPS = ['full', 'incremental', 'restore'] as const;
export type FileStep = (typeof FILE_STEPS)[number];

/** One tool's step. */
export interface FileStepResult extends Measurement {
  readonly tool: ToolName;
  readonly step: FileStep;
  /** The repository after the step. */
  readonly repo: TreeSize;
  /** Set when the step failed (the tool's later steps did not run). */
  readonly error?: string;
}

/** The whole part, as stored under `files` in the results JSON. */
export interface FilesResult {
  readonly tree: Omit<FileTreeLayout, 'small' | 'large'>;
  readonly changes: FileChanges;
  readonly tools: Record<string, string>;
  readonly results: readonly FileStepResult[];
}

/** How one tool is driven for this part. */
interface FileTool {
  readonly name: ToolName;
  readonly settings: string;
  init(): Promise<void>;
  backup(label: string): Promise<Measurement>;
  /** Restores the newest backup into `dir`; answers where the tree is inside it. */
  restore(dir: string): Promise<{ m: Measurement; tree: string }>;
}

const HOST = 'bench';

function fileTool(name: ToolName, cfg: BenchConfig, repo: string, home: string, tree: string): FileTool {
  if (name === 'coffer') {
    const env = { COFFER_PASSWORD: cfg.password, XDG_CACHE_HOME: path.join(home, 'cache') };
    const coffer = (...args: string[]) => timed(process.execPath, [cfg.cofferBin, ...args], { env });
    // BENCH_FORMAT=2 makes a format 2 repository (packs), as in the other parts (tool-coffer.ts).
    const format = process.env.BENCH_FORMAT === undefined ? [] : ['--format', process.env.BENCH_FORMAT];
    return {
      name,
      settings: `defaults${format.length > 0 ? `, init ${format.join(' ')}` : ''}: backup --files TREE --host bench`,
      init: async () => void (await coffer('init', '-r', repo, ...format)),
      backup: async () => (await coffer('backup', '-r', repo, '--files', tree, '--host', HOST, '--json')).m,
      restore: async (dir) => ({ m: (await coffer('restore', '-r', repo, `${HOST}:latest`, '--to', dir)).m, tree: path.join(dir, tree) }),
    };
  }
  if (name === 'restic') {
    const env = { RESTIC_PASSWORD: cfg.password, RESTIC_CACHE_DIR: path.join(home, 'cache') };
    const restic = (...args: string[]) => timed('restic', ['-r', repo, ...args], { env });
    return {
      name,
      settings: 'repository v2, --compression auto (default), backup --host bench TREE',
      init: async () => void (await restic('init', '--repository-version', '2')),
      backup: async () => (await restic('backup', '--json', '--host', HOST, tree)).m,
      restore: async (dir) => ({ m: (await restic('restore', 'latest', '--host', HOST, '--target', dir)).m, tree: path.join(dir, tree) }),
    };
  }
  const env = { BORG_PASSPHRASE: cfg.password, BORG_BASE_DIR: home, BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };
  let last = '';
  return {
    name,
    settings: 'repokey, create --compression zstd,3 (files cache on)',
    init: async () => void (await timed('borg', ['init', '-e', 'repokey', repo], { env })),
    backup: async (label) => {
      last = label;
      return (await timed('borg', ['create', '--compression', 'zstd,3', `${repo}::${label}`, tree], { env })).m;
    },
    restore: async (dir) => ({ m: (await timed('borg', ['extract', `${repo}::${last}`], { env, cwd: dir })).m, tree: path.join(dir, tree.slice(1)) }),
  };
}

/** Runs the part for `tools` (in this order); `log` tells progress. */
export async function runFiles(cfg: BenchConfig, tools: readonly ToolName[], log: (line: string) => void): Promise<FilesResult> {
  const { tree: cached, layout } = await ensureFileTree(path.join(cfg.workDir, `files-x${cfg.scale}`), cfg.scale, log);
  const base = path.join(cfg.runDir, 'files');
  const tree = path.join(base, 'tree');
  await rm(base, { recursive: true, force: true });
  await mkdir(base, { recursive: true });
  await run('cp', ['-a', cached, tree]);
  const drivers = tools.map((name) => {
    const dir = path.join(base, name);
    return { tool: fileTool(name, cfg, path.join(dir, 'repo'), path.join(dir, 'home'), tree), repo: path.join(dir, 'repo'), failed: false };
  });
  const results: FileStepResult[] = [];
  const step = async (d: (typeof drivers)[number], name: FileStep, measure: () => Promise<Measurement>) => {
    if (d.failed) return;
    try {
      const m = await measure();
      results.push({ tool: d.tool.name, step: name, ...m, repo: await treeSize(d.repo) });
      log(`files: ${d.tool.name} ${name}: ${m.wallS.toFixed(1)} s wall, ${m.cpuS.toFixed(1)} s CPU`);
    } catch (error) {
      d.failed = true;
      results.push({ tool: d.tool.name, step: name, wallS: 0, cpuS: 0, maxRssKiB: 0, repo: { apparent: 0, allocated: 0 }, error: (error as Error).message });
      log(`files: ${d.tool.name} ${name} FAILED: ${(error as Error).message.split('\n')[0] ?? ''}`);
    }
  };

  for (const d of drivers) {
    await step(d, 'full', async () => {
      await mkdir(path.join(base, d.tool.name, 'home'), { recursive: true });
      await d.tool.init();
      await warm([tree]);
      await settle();
      return d.tool.backup('full');
    });
  }
  const changes = await applyFileChanges(tree, layout, cfg.scale);
  log(`files: changed the tree (${(changes.bytesWritten / 2 ** 20).toFixed(1)} MiB written)`);
  for (const d of drivers) {
    await warm([tree]);
    await settle();
    await step(d, 'incremental', () => d.tool.backup('incremental'));
  }
  const restores: string[] = [];
  for (const d of drivers) {
    const out = path.join(base, `restore-${d.tool.name}`);
    restores.push(out);
    await rm(out, { recursive: true, force: true });
    await mkdir(out, { recursive: true });
    await warm([d.repo]);
    await settle();
    await step(d, 'restore', async () => {
      const { m, tree: restored } = await d.tool.restore(out);
      const diff = await run('diff', ['-rq', '--no-dereference', tree, restored], { allowFail: true });
      if (diff.code !== 0) throw new Error(`the restored tree differs from the source: ${diff.stdout.split('\n').slice(0, 5).join('; ')}`);
      return m;
    });
  }
  // Deleted once all have restored: a deletion of tens of thousands of files slows the next restore (above).
  for (const out of restores) await rm(out, { recursive: true, force: true });
  if (!cfg.keep) for (const d of drivers) await rm(path.dirname(d.repo), { recursive: true, force: true });
  if (!cfg.keep) await rm(base, { recursive: true, force: true });
  const { small: _small, large: _large, ...summary } = layout;
  return { tree: summary, changes, tools: Object.fromEntries(drivers.map((d) => [d.tool.name, d.tool.settings])), results };
}
