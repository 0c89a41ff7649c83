/**
 * `npm run bench`: Coffer against restic and borg on the same realistic 4 GiB disk and its
 * derived versions, in one run, on this machine. Prints the tables and writes
 * `bench/results/<timestamp>.json`. See bench/README.md for what is measured and how to
 * read it; config.ts for the environment variables.
 *
 * @module
 */
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type BenchConfig, type ToolName } from './config.js';
import { ensureDisks } from './derive.js';
import { runFiles, type FilesResult } from './files.js';
import { renderFiles } from './files-report.js';
import { renderChain, runChain, type ChainResult } from './chain.js';
import { renderFormats, runFormats, type FormatResult } from './formats.js';
import { liveTargets, renderLive, runLive, type LiveResult } from './live.js';
import { renderOffsite, runOffsite, type OffsiteResult } from './offsite.js';
import { runPrune, type PruneResult } from './prune.js';
import { renderPrune } from './prune-report.js';
import { renderSteps, renderTargets, writeReport } from './report.js';
import type { BenchReport, StepResult } from './results.js';
import { runBigDisk, runSequence } from './sequence.js';
import { renderService, runServiceBench, type ServiceBenchResult } from './service.js';
import { evaluateTargets, filesTargets, pruneTargets } from './targets.js';
import { createTool, unavailable, type BackupTool, type ToolContext } from './tools.js';
import { renderWorkers, runWorkersBench, type WorkersBenchResult } from './workers.js';

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

async function main(): Promise<number> {
  const startedAt = new Date().toISOString();
  // dist/bench/run.js → project root two levels up (and bench/run.ts the same from source).
  const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const cfg = loadConfig(process.env, projectRoot);
  log(`scale ${cfg.scale}: ${cfg.diskBytes / 2 ** 30} GiB disk, work dir ${cfg.workDir}`);
  const loadStart = os.loadavg();
  if ((loadStart[0] ?? 0) > os.cpus().length / 2) {
    log(`warning: load average ${loadStart[0]?.toFixed(1)} on ${os.cpus().length} CPUs; other work will distort wall times`);
  }

  const toolInfo: BenchReport['tools'] = {};
  const tools: BackupTool[] = [];
  for (const name of cfg.tools) {
    const why = await unavailable(name, cfg.cofferBin);
    if (why !== undefined) {
      log(`skipping ${name}: ${why}`);
      toolInfo[name] = { skipped: why };
      continue;
    }
    const tool = createTool(name, toolCtx(cfg, name));
    toolInfo[name] = { version: await tool.version(), settings: tool.settings };
    tools.push(tool);
  }
  if (tools.length === 0) {
    log('no tool can run; nothing to measure');
    return 1;
  }

  const disks = await ensureDisks(cfg, log);
  await rm(cfg.runDir, { recursive: true, force: true });
  await mkdir(cfg.runDir, { recursive: true });

  const results: StepResult[] = [];
  // BENCH_SEQUENCE=0 skips the main comparison (to run only the parts after it).
  const sequenceTools = process.env.BENCH_SEQUENCE === '0' ? [] : tools;
  for (const tool of sequenceTools) {
    log(`${tool.name}: ${tool.settings}`);
    results.push(...(await runSequence(cfg, { tool, repo: repoOf(cfg.runDir, tool.name), disks, log })));
    if (!cfg.keep) await rm(path.join(cfg.runDir, tool.name), { recursive: true, force: true });
  }
  if (sequenceTools.some((t) => t.name === 'coffer')) {
    const name = 'coffer-big' as const;
    const tool = createTool('coffer', toolCtx(cfg, name));
    log(`coffer: memory check on a ${cfg.bigDiskBytes / 2 ** 30} GiB sparse disk`);
    results.push(await runBigDisk(cfg, { tool, repo: repoOf(cfg.runDir, name), disks, log }));
    if (!cfg.keep) await rm(path.join(cfg.runDir, name), { recursive: true, force: true });
  }

  // Thirty daily backups, forget half, prune (BENCH_PRUNE=0 skips it). Coffer alone (≈3 min at
  // scale 1) unless BENCH_PRUNE_PEERS=1 adds restic and borg (≈10 min more).
  let prune: PruneResult | undefined;
  const pruneTools = tools.filter((t) => t.name === 'coffer' || process.env.BENCH_PRUNE_PEERS === '1');
  if (process.env.BENCH_PRUNE !== '0' && pruneTools.length > 0) {
    const name = (t: ToolName): string => `prune-${t}`;
    prune = await runPrune(cfg, {
      tools: pruneTools.map((t) => createTool(t.name, toolCtx(cfg, name(t.name)))),
      repoOf: (t) => repoOf(cfg.runDir, name(t)),
      base: disks.base,
      layout: disks.layout,
      log,
    });
  }
  if (!cfg.keep) await rm(cfg.runDir, { recursive: true, force: true });

  // Disk formats against qemu-img (BENCH_FORMATS=0 skips them).
  let formats: FormatResult[] = [];
  if (process.env.BENCH_FORMATS !== '0' && tools.some((t) => t.name === 'coffer')) formats = await runFormats(cfg, disks.base, log);
  // The chain-aware incremental of a qcow2 overlay, on the formats part's qcow2 (chain.ts).
  let chain: ChainResult | undefined;
  if (formats.length > 0) {
    chain = await runChain(cfg, path.join(cfg.diskDir, 'formats', 'qcow2'), cfg.partitionBytes, log).catch((error: unknown) => {
      log(`chain: failed: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    });
  }

  // A running QEMU VM and instant recovery (BENCH_LIVE=0 skips it).
  let live: LiveResult | undefined;
  if (process.env.BENCH_LIVE !== '0' && tools.some((t) => t.name === 'coffer')) live = await runLive(cfg, disks.base, log);

  // Backup and restore over S3 against restic, and ten daily syncs to a bucket (BENCH_S3=0 skips it).
  let offsite: OffsiteResult | undefined;
  if (process.env.BENCH_S3 !== '0' && tools.some((t) => t.name === 'coffer')) {
    offsite = await runOffsite(cfg, { base: disks.base, layout: disks.layout, peers: tools.some((t) => t.name === 'restic') ? ['restic'] : [], log });
  }

  // Directory trees against restic and borg (BENCH_FILES=0 skips them; files.ts).
  const files: FilesResult | undefined = process.env.BENCH_FILES !== '0' ? await runFiles(cfg, tools.map((t) => t.name), log) : undefined;

  // The service: planning, a night's start, scheduler CPU, API latency and RSS with 100,000
  // snapshots in history (BENCH_SERVICE=0 skips it).
  let service: ServiceBenchResult | undefined;
  if (process.env.BENCH_SERVICE !== '0') service = await runServiceBench(cfg.workDir, log);

  // 1, 2 and 3 workers on PostgreSQL and the Ceph gateway, each task I/O-paced (BENCH_WORKERS=0 skips it; workers.ts).
  let workers: WorkersBenchResult | undefined;
  if (process.env.BENCH_WORKERS !== '0') workers = await runWorkersBench(log);

  const targets = [...evaluateTargets(results), ...(prune !== undefined ? pruneTargets(prune) : []), ...(files !== undefined ? filesTargets(files) : [])];
  const names = tools.map((t) => t.name);
  process.stdout.write(`\n${renderSteps(results, names)}\n\n${renderTargets(targets)}\n\n`);
  if (prune !== undefined) process.stdout.write(`${renderPrune(prune)}\n\n`);
  if (formats.length > 0) process.stdout.write(`${renderFormats(formats)}\n\n`);
  if (chain !== undefined) process.stdout.write(`${renderChain(chain)}\n\n`);
  if (live !== undefined) process.stdout.write(`${renderLive(live)}\n\n`);
  if (offsite !== undefined) process.stdout.write(`${renderOffsite(offsite)}\n\n`);
  if (files !== undefined) process.stdout.write(`${renderFiles(files)}\n\n`);
  if (service !== undefined) process.stdout.write(`${renderService(service)}\n\n`);
  if (workers !== undefined) process.stdout.write(`${renderWorkers(workers)}\n\n`);

  const report: BenchReport = {
    version: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryBytes: os.totalmem(),
      kernel: os.release(),
      node: process.version,
      loadavgStart: loadStart,
      loadavgEnd: os.loadavg(),
    },
    config: {
      scale: cfg.scale,
      diskBytes: cfg.diskBytes,
      partitionBytes: cfg.partitionBytes,
      filesBytes: disks.layout.filesBytes,
      fileCount: disks.layout.fileCount,
      bigDiskBytes: cfg.bigDiskBytes,
    },
    disks: { changes: disks.changes },
    tools: toolInfo,
    results,
    targets,
    formats,
    ...(chain !== undefined ? { chain } : {}),
    ...(prune !== undefined ? { prune } : {}),
    ...(live !== undefined ? { live: { ...live, targets: liveTargets(live) } } : {}),
    ...(offsite !== undefined ? { offsite } : {}),
    ...(files !== undefined ? { files } : {}),
    ...(service !== undefined ? { service } : {}),
    ...(workers !== undefined ? { workers } : {}),
  };
  const file = await writeReport(cfg.resultsDir, report);
  log(`results: ${file}`);
  const pruneFailed = prune?.tools.some((t) => t.error !== undefined) ?? false;
  const filesFailed = files?.results.some((r) => r.error !== undefined) ?? false;
  return results.some((r) => r.error !== undefined) || pruneFailed || filesFailed ? 1 : 0;
}

function repoOf(runDir: string, name: string): string {
  return path.join(runDir, name, 'repo');
}

function toolCtx(cfg: BenchConfig, name: string): ToolContext {
  return {
    repo: repoOf(cfg.runDir, name),
    home: path.join(cfg.runDir, name, 'home'),
    password: cfg.password,
    cofferBin: cfg.cofferBin,
  };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(2);
  },
);
