/**
 * `node dist/bench/chunk-sizes.js`: measures file backup's chunk sizes (FastCDC min / avg /
 * max) on the file part's tree (file-tree.ts, at `BENCH_SCALE`, default 0.25: ≈0.5 GiB,
 * 12,500 files), to choose them by measurement (docs/file-backup.md has the table).
 *
 * For each setting, in-process through the backup API (`backupFiles` with `chunkSizes`), in
 * a fresh encrypted local repository, on a fresh copy of the tree:
 * - **full**: wall time, bytes stored, chunks stored (`chunks/` files) and bytes read;
 * - **incremental** after applyFileChanges (bytes overwritten and inserted in the middle of
 *   large files, appends, small files edited, added, deleted): wall time and bytes stored —
 *   what an edit in the middle of a large file costs at each size.
 *
 * Settings: `BENCH_CHUNK_SIZES="256K/512K/2M,512K/1M/8M"` (default: the four below). Writes
 * `bench/results/chunk-sizes-<timestamp>.json` and prints a table. Never run in CI.
 *
 * @module
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backupFiles, type ChunkSizes } from '../src/backup/index.js';
import { initRepository, LocalBackend, openRepository } from '../src/repo/index.js';
import { loadConfig } from './config.js';
import { run } from './exec.js';
import { applyFileChanges, ensureFileTree } from './file-tree.js';
import { settle, treeSize, warm } from './measure.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const DEFAULT_SETTINGS = '256K/512K/2M,512K/1M/8M,1M/2M/8M,2M/4M/16M';

function log(line: string): void {
  process.stderr.write(`[chunk-sizes ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function parseSize(text: string): number {
  const m = /^(\d+)([KM])$/.exec(text);
  if (m === null) throw new Error(`bad size ${text} (e.g. 512K, 8M)`);
  return Number(m[1]) * (m[2] === 'K' ? KiB : MiB);
}

function parseSettings(text: string): { label: string; sizes: ChunkSizes }[] {
  return text.split(',').map((label) => {
    const [min, avg, max] = label.split('/').map(parseSize);
    if (min === undefined || avg === undefined || max === undefined) throw new Error(`bad setting ${label} (min/avg/max)`);
    return { label, sizes: { min, avg, max } };
  });
}

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) if (entry.isFile()) n++;
  return n;
}

interface Row {
  setting: string;
  full: { wallS: number; bytesRead: number; bytesStored: number; chunks: number; repoBytes: number };
  incremental: { wallS: number; bytesRead: number; bytesStored: number; chunks: number };
}

async function main(): Promise<void> {
  const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const cfg = loadConfig({ ...process.env, BENCH_SCALE: process.env.BENCH_SCALE ?? '0.25' }, projectRoot);
  const settings = parseSettings(process.env.BENCH_CHUNK_SIZES ?? DEFAULT_SETTINGS);
  const { tree: cached, layout } = await ensureFileTree(path.join(cfg.workDir, `files-x${cfg.scale}`), cfg.scale, log);
  const base = path.join(cfg.runDir, 'chunk-sizes');
  const rows: Row[] = [];
  const startedAt = new Date().toISOString();
  const loadStart = os.loadavg();
  for (const { label, sizes } of settings) {
    await rm(base, { recursive: true, force: true });
    await mkdir(base, { recursive: true });
    const tree = path.join(base, 'tree');
    await run('cp', ['-a', cached, tree]);
    const repoDir = path.join(base, 'repo');
    const backend = new LocalBackend(repoDir);
    // Format 1: the table counts chunk objects (`chunks/` files), one per chunk, which format 2
    // (packs, the default) does not have; docs/file-backup.md's table was measured so.
    await initRepository(backend, { passphrase: cfg.password, format: 1 });
    const repo = await openRepository(backend, { passphrase: cfg.password });
    try {
      await warm([tree]);
      await settle();
      let started = performance.now();
      const full = await backupFiles(repo, { host: 'chunks', paths: [tree], parent: null, chunkSizes: sizes });
      const fullWall = (performance.now() - started) / 1000;
      const chunksFull = await countFiles(path.join(repoDir, 'chunks'));
      const repoBytes = (await treeSize(repoDir)).apparent;
      await applyFileChanges(tree, layout, cfg.scale);
      await warm([tree]);
      await settle();
      started = performance.now();
      const incr = await backupFiles(repo, { host: 'chunks', paths: [tree], parent: full, chunkSizes: sizes });
      const incrWall = (performance.now() - started) / 1000;
      const chunksIncr = (await countFiles(path.join(repoDir, 'chunks'))) - chunksFull;
      rows.push({
        setting: label,
        full: { wallS: fullWall, bytesRead: full.stats.bytesRead, bytesStored: full.stats.bytesStored, chunks: chunksFull, repoBytes },
        incremental: { wallS: incrWall, bytesRead: incr.stats.bytesRead, bytesStored: incr.stats.bytesStored, chunks: chunksIncr },
      });
      log(`${label}: full ${fullWall.toFixed(1)} s, ${(full.stats.bytesStored / MiB).toFixed(1)} MiB in ${chunksFull} chunks; incremental ${incrWall.toFixed(1)} s, ${(incr.stats.bytesStored / MiB).toFixed(2)} MiB in ${chunksIncr} chunks`);
    } finally {
      await repo.close();
    }
  }
  await rm(base, { recursive: true, force: true });

  const lines = [
    `chunk sizes on ${layout.smallFiles + layout.largeFiles} files, ${((layout.smallBytes + layout.largeBytes) / MiB).toFixed(0)} MiB (scale ${cfg.scale}); load ${loadStart[0]?.toFixed(1)} → ${os.loadavg()[0]?.toFixed(1)}`,
    'min/avg/max     | full s  stored MiB  chunks  repo MiB | incr s  read MiB  stored MiB  chunks',
  ];
  for (const r of rows) {
    lines.push(
      `${r.setting.padEnd(16)}|${r.full.wallS.toFixed(1).padStart(7)}${(r.full.bytesStored / MiB).toFixed(1).padStart(12)}${String(r.full.chunks).padStart(8)}${(r.full.repoBytes / MiB).toFixed(1).padStart(10)} |` +
        `${r.incremental.wallS.toFixed(1).padStart(7)}${(r.incremental.bytesRead / MiB).toFixed(1).padStart(10)}${(r.incremental.bytesStored / MiB).toFixed(2).padStart(12)}${String(r.incremental.chunks).padStart(8)}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  await mkdir(cfg.resultsDir, { recursive: true });
  const file = path.join(cfg.resultsDir, `chunk-sizes-${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.json`);
  await writeFile(file, `${JSON.stringify({ version: 1, startedAt, scale: cfg.scale, loadavgStart: loadStart, loadavgEnd: os.loadavg(), tree: { smallFiles: layout.smallFiles, smallBytes: layout.smallBytes, largeFiles: layout.largeFiles, largeBytes: layout.largeBytes }, rows }, null, 2)}\n`);
  log(`results: ${file}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(2);
  },
);
