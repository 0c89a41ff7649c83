/**
 * `node dist/bench/files-main.js`: the file-backup part alone (files.ts), without the disk
 * parts of `npm run bench`: the same configuration (BENCH_SCALE, BENCH_DIR, BENCH_TOOLS,
 * BENCH_KEEP), the table and the targets printed, the results written to
 * `bench/results/files-<timestamp>.json`.
 *
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type ToolName } from './config.js';
import { runFiles } from './files.js';
import { renderFiles } from './files-report.js';
import { renderTargets } from './report.js';
import { filesTargets } from './targets.js';
import { unavailable } from './tools.js';

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

async function main(): Promise<number> {
  const startedAt = new Date().toISOString();
  const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const cfg = loadConfig(process.env, projectRoot);
  const loadStart = os.loadavg();
  if ((loadStart[0] ?? 0) > os.cpus().length / 2) log(`warning: load average ${loadStart[0]?.toFixed(1)} on ${os.cpus().length} CPUs; other work will distort wall times`);
  const tools: ToolName[] = [];
  for (const name of cfg.tools) {
    const why = await unavailable(name, cfg.cofferBin);
    if (why === undefined) tools.push(name);
    else log(`skipping ${name}: ${why}`);
  }
  const files = await runFiles(cfg, tools, log);
  const targets = filesTargets(files);
  process.stdout.write(`\n${renderFiles(files)}\n\n${renderTargets(targets)}\n\n`);
  await mkdir(cfg.resultsDir, { recursive: true });
  const file = path.join(cfg.resultsDir, `files-${startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.json`);
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, loadavgStart: loadStart, loadavgEnd: os.loadavg() };
  await writeFile(file, `${JSON.stringify({ version: 1, startedAt, finishedAt: new Date().toISOString(), machine, scale: cfg.scale, files, targets }, null, 2)}\n`);
  log(`results: ${file}`);
  return files.results.some((r) => r.error !== undefined) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(2);
  },
);
