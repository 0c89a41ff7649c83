/**
 * `node dist/bench/floor.js [RESULTS.json]`: how close the main comparison's time targets
 * can get on this machine. Measures, in CPU-seconds on one core, what the unavoidable work
 * costs here (reading, HMAC-SHA256, zstd level 3 both ways, AES-256-GCM, writing) on blocks
 * of the cached bench disk, then prints for each step of the results file (default: the
 * newest in bench/results with a main comparison) the floor of its CPU and wall time
 * (floor-model.ts) beside what Coffer and the best peer measured. Needs the disks built by
 * `npm run bench` at the same `BENCH_SCALE`. CPU time is measured, not wall time, so the
 * figures hold on a busy machine too.
 *
 * @module
 */
import crypto from 'node:crypto';
import { promises as fs, openSync, readSync, closeSync, writeSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Compressor, Decompressor } from 'zstd-napi';
import { loadConfig } from './config.js';
import { stepFloor, type PrimitiveRates } from './floor-model.js';
import type { StepResult } from './results.js';
import { WALL_TARGETS } from './targets.js';

const BLOCK = 256 * 1024;
const SAMPLE_BLOCKS = 768;

function cpuOf(work: () => void): number {
  const start = process.cpuUsage();
  work();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

/** Non-zero blocks spread evenly over the first `span` bytes of the disk. */
function sampleBlocks(disk: string, span: number): Buffer[] {
  const fd = openSync(disk, 'r');
  try {
    const blocks: Buffer[] = [];
    const step = Math.max(BLOCK, Math.floor(span / (SAMPLE_BLOCKS * 2) / BLOCK) * BLOCK);
    for (let offset = 0; offset + BLOCK <= span && blocks.length < SAMPLE_BLOCKS; offset += step) {
      const block = Buffer.allocUnsafe(BLOCK);
      readSync(fd, block, 0, BLOCK, offset);
      if (!block.every((byte) => byte === 0)) blocks.push(block);
    }
    return blocks;
  } finally {
    closeSync(fd);
  }
}

function measureRates(disk: string, span: number, scratch: string): PrimitiveRates {
  const blocks = sampleBlocks(disk, span);
  const plain = blocks.length * BLOCK;
  const key = crypto.randomBytes(32);
  const compressor = new Compressor();
  compressor.setParameters({ compressionLevel: 3 });
  const decompressor = new Decompressor();
  let compressed: Buffer[] = [];
  const fd = openSync(disk, 'r');
  const read = cpuOf(() => {
    const buffer = Buffer.allocUnsafe(BLOCK);
    for (let i = 0; i < blocks.length; i += 1) readSync(fd, buffer, 0, BLOCK, i * BLOCK);
  });
  closeSync(fd);
  const mac = cpuOf(() => {
    for (const block of blocks) crypto.createHmac('sha256', key).update(block).digest();
  });
  const compress = cpuOf(() => {
    compressed = blocks.map((block) => compressor.compress(block));
  });
  const stored = compressed.reduce((sum, c) => sum + c.length, 0);
  const encrypt = cpuOf(() => {
    for (const c of compressed) {
      const cipher = crypto.createCipheriv('aes-256-gcm', key, crypto.randomBytes(12));
      cipher.update(c);
      cipher.final();
      cipher.getAuthTag();
    }
  });
  const decompress = cpuOf(() => {
    for (const c of compressed) decompressor.decompress(c);
  });
  const out = openSync(scratch, 'w');
  const write = cpuOf(() => {
    for (const block of blocks) writeSync(out, block);
  });
  closeSync(out);
  unlinkSync(scratch);
  return {
    read: plain / read,
    mac: plain / mac,
    compress: plain / compress,
    decompress: plain / decompress,
    encrypt: stored / encrypt,
    write: plain / write,
  };
}

async function newestResults(dir: string): Promise<string> {
  const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json')).sort().reverse();
  for (const name of names) {
    const file = path.join(dir, name);
    const report = JSON.parse(await fs.readFile(file, 'utf8')) as { results?: StepResult[] };
    if (report.results?.some((r) => r.tool !== 'coffer' && r.step === 'full')) return file;
  }
  throw new Error(`no results with a main comparison in ${dir}: run npm run bench first`);
}

const MB = 1e6;
const f1 = (n: number) => n.toFixed(1).padStart(6);
const f2 = (n: number) => n.toFixed(2).padStart(6);

async function main(): Promise<void> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const cfg = loadConfig(process.env, root);
  const resultsFile = process.argv[2] ?? (await newestResults(cfg.resultsDir));
  const report = JSON.parse(await fs.readFile(resultsFile, 'utf8')) as { results: StepResult[]; config: { filesBytes: number } };
  const disk = path.join(cfg.diskDir, 'base.raw');
  await fs.access(disk).catch(() => {
    throw new Error(`${disk} is missing: run npm run bench at BENCH_SCALE=${cfg.scale} first`);
  });
  const cpus = os.availableParallelism();
  const rates = measureRates(disk, report.config.filesBytes, path.join(os.tmpdir(), `coffer-floor-${process.pid}`));
  console.log(`results: ${resultsFile}\nCPUs: ${cpus}; rates on one core (MB per CPU-second):`);
  for (const [name, rate] of Object.entries(rates)) console.log(`  ${name.padEnd(10)} ${(rate / MB).toFixed(0)}`);
  console.log('\nstep            | coffer wall   cpu | floor  cpu  wall | best peer | floor ratio  target | CPUs for target: at floor, as measured');
  for (const target of WALL_TARGETS) {
    const floor = stepFloor(report.results, target.step, target.limit, rates, cpus);
    if (floor === undefined) continue;
    const reachable = floor.floorRatio <= target.limit ? 'reachable' : 'below the floor';
    console.log(
      `${target.step.padEnd(15)} | ${f1(floor.cofferWallS)} ${f1(floor.cofferCpuS)} | ${f1(floor.floorCpuS)} ${f1(floor.floorWallS)} | ${f1(floor.peerWallS)}    | ${f2(floor.floorRatio)} <=${target.limit.toFixed(2)} | ${f1(floor.cpusForTargetAtFloor)} ${f1(floor.cpusForTargetAsMeasured)}  ${reachable}`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(`floor: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
