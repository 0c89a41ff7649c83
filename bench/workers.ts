/**
 * The workers' part of the benchmark (issue #10, Benchmark; `BENCH_WORKERS=0` skips it; never
 * in CI): the same synthetic inventory — `BENCH_WORKERS_VMS` VMs (default 24) of 2 MiB of
 * random data on 12 hosts — backed up by 1, 2 and 3 `coffer worker` processes (4 tasks each)
 * taking tasks from a real PostgreSQL (src/testing/postgres.ts) and writing to a fresh
 * repository (format 2) on the local Ceph RADOS Gateway (src/testing/ceph-s3.ts) for each run.
 *
 * This machine has 2 CPUs that every worker shares; a real worker has a machine of its own and
 * is paced by its hypervisors' disks. So each host's reads are held to 128 KiB/s by a
 * bandwidth rule scoped to it (per-host limit 1: each backup has its host's rule to itself),
 * which makes every task I/O-paced (16 s of reading against ≈1 CPU-s of fixed cost: the task's
 * process, the repository opened, the manifest): what is measured is how the queue and the
 * limits let added workers add throughput, not how fast 2 shared cores hash. The gateway
 * receives at most 1.5 MiB/s. 24 VMs on 12 hosts with 4 tasks per worker: 6, 3 and 2 rounds.
 *
 * Measured per run: the night (queue to last end), VMs per minute, MB/s read, the scaling
 * factor against one worker (target: 3 workers ≥ 2.5×), the queue's delay per task (from the
 * moment it could run to its hand-out's commit, from the tasks' timestamps in the state DB:
 * target ≤ 20 ms) and PostgreSQL's CPU per task (all its processes, from /proc).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initRepository, parseS3Location, S3Backend } from '../src/repo/index.js';
import { medianAndMax, publishNightPolicy, runNight, startWorkerProcesses } from '../src/server/cluster/night-run.js';
import { predictNight } from '../src/server/scheduler/index.js';
import { openStateDatabase } from '../src/server/state/index.js';
import { TaskRunner, type VmTarget } from '../src/server/tasks/index.js';
import { makeTempDir, startCephS3, startPostgres } from '../src/testing/index.js';
import { emptyTakes, parseTakeTimings, quantiles, renderBreakdown, splitDelays, summarize, type DelayBreakdown } from './queue-breakdown.js';

const MiB = 1024 * 1024;
const VM_BYTES = 2 * MiB;
const READ_RATE = 128 * 1024;
const TASKS_PER_WORKER = 4;
const HOSTS = Array.from({ length: 12 }, (_, i) => `hv${String(i).padStart(2, '0')}`);

/** One run with `workers` workers. */
export interface WorkersRow {
  readonly workers: number;
  readonly vms: number;
  readonly nightS: number;
  readonly vmsPerMinute: number;
  readonly readMBps: number;
  /** Throughput ÷ one worker's. */
  readonly scaling: number;
  readonly queueDelayMedianMs: number;
  readonly queueDelayP90Ms: number;
  readonly queueDelayMaxMs: number;
  /** What the delays are made of (queue-breakdown.ts). */
  readonly breakdown: readonly DelayBreakdown[];
  /** The 1-minute load average at the run's start and end. */
  readonly load: readonly [number, number];
  /** PostgreSQL's CPU (its processes that lived through the run) over the run ÷ tasks. */
  readonly dbCpuMsPerTask: number;
  /** A task's mean time from hand-out to end: above the source's pace when the CPUs are short. */
  readonly meanTaskS: number;
  /** The planning model's night for this run, fed the mean task time (slots and rounds only). */
  readonly modelNightS: number;
}

export interface WorkersBenchResult {
  readonly rows: readonly WorkersRow[];
  readonly settings: string;
}

/** Runs the part; `log` reports progress. */
export async function runWorkersBench(log: (line: string) => void): Promise<WorkersBenchResult> {
  const vmCount = Number(process.env.BENCH_WORKERS_VMS ?? 24);
  const dir = await makeTempDir('coffer-bench-workers');
  const pg = await startPostgres();
  const s3 = await startCephS3();
  const url = await pg.createDatabase();
  const state = await openStateDatabase({ url });
  const server = new TaskRunner(state.db, { dispatch: false });
  try {
    await server.start();
    await publishNightPolicy(state.db, HOSTS, READ_RATE);
    const bucket = await s3.createBucket('workers');
    const passphraseFile = path.join(dir.path, 'pass');
    await writeFile(passphraseFile, 'pw\n');
    const images: string[] = [];
    for (let i = 0; i < vmCount; i++) {
      const image = path.join(dir.path, `vm-${i}.raw`);
      await writeFile(image, randomBytes(VM_BYTES));
      images.push(image);
    }
    const rows: WorkersRow[] = [];
    const counts = (process.env.BENCH_WORKERS_COUNTS ?? '1,2,3').split(',').map(Number);
    const format = process.env.BENCH_WORKERS_FORMAT === '1' ? 1 : 2;
    log(`repositories of format ${format}`);
    for (const workerCount of counts) {
      // A fresh repository per run: each run stores everything, as the first did. Format 2 unless
      // BENCH_WORKERS_FORMAT says 1: what `coffer init` and initRepository make (the latter's
      // default was 1 until 2026-11-27): runs before 2026-11-26 23:00 measured format 1.
      const repoUrl = `s3:${s3.endpoint}/${bucket}/w${workerCount}`;
      await initRepository(new S3Backend(parseS3Location(repoUrl), { credentials: s3.credentials }), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, format });
      const vms: VmTarget[] = images.map((image, i) => ({ vm: `vm-${i}`, host: HOSTS[i % HOSTS.length] as string, repository: { name: 'main', url: repoUrl, passphraseFile }, source: { images: [image] } }));
      const workers = await startWorkerProcesses(state.db, url, { count: workerCount, tasks: TASKS_PER_WORKER, prefix: `bench${workerCount}-`, env: s3.env, traceQueue: true, timeoutMs: 120_000 });
      try {
        const loadBefore = loadavg()[0] ?? 0;
        const cpuBefore = await postgresCpuMs(pg.dir);
        const night = await runNight(state.db, server, vms, 15 * 60_000);
        const cpuAfter = await postgresCpuMs(pg.dir);
        const meanTaskS = night.tasks.reduce((sum, t) => sum + (t.endedAt - t.startedAt), 0) / night.tasks.length / 1000;
        const model = predictNight({ vms: vmCount, allocatedBytes: 0, dailyChangeRate: 0, hosts: HOSTS.length, workers: workerCount, tasksPerWorker: TASKS_PER_WORKER, taskOverheadS: meanTaskS, taskReadBytesPerSecond: READ_RATE });
        const nightS = night.nightMs / 1000;
        const delays = medianAndMax(night.queueDelaysMs);
        const takes = new Map(workers.names.map((name) => [name, parseTakeTimings(workers.stdoutOf(name))]));
        const breakdown = summarize(splitDelays(night.tasks, night.queueDelaysMs, takes));
        for (const line of renderBreakdown(breakdown, emptyTakes(takes))) log(`  ${line}`);
        const vmsPerMinute = vmCount / (nightS / 60);
        rows.push({
          workers: workerCount, vms: vmCount, nightS, vmsPerMinute, readMBps: (vmCount * VM_BYTES) / 1e6 / nightS,
          scaling: vmsPerMinute / (rows[0]?.vmsPerMinute ?? vmsPerMinute),
          queueDelayMedianMs: delays.median, queueDelayP90Ms: quantiles(night.queueDelaysMs).p90, queueDelayMaxMs: delays.max, breakdown, load: [loadBefore, loadavg()[0] ?? 0], dbCpuMsPerTask: cpuDelta(cpuBefore, cpuAfter) / vmCount,
          meanTaskS, modelNightS: model.nightS,
        });
        log(`workers: ${workerCount} worker(s), ${vmCount} VMs in ${nightS.toFixed(1)} s`);
      } finally {
        await workers.kill();
      }
    }
    return { rows, settings: `${vmCount} VMs × ${VM_BYTES / MiB} MiB on ${HOSTS.length} hosts, per-host limit 1, each host read at ${READ_RATE / MiB} MiB/s, ${TASKS_PER_WORKER} tasks per worker, Ceph RGW` };
  } finally {
    await server.close();
    await state.close();
    await pg.stop();
    await s3.stop();
    await dir.remove();
  }
}

/** CPU ms used between two readings by the processes present at the second (a backend that ended meanwhile is not counted). */
function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, used] of after) ms += used - (before.get(pid) ?? 0);
  return ms;
}

/** CPU ms used so far by each process of the PostgreSQL server whose data is under `pgDir` (the postmaster and its children), by pid. */
async function postgresCpuMs(pgDir: string): Promise<Map<number, number>> {
  const postmaster = Number((await readFile(path.join(pgDir, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0]);
  const ticksPerSecond = 100; // USER_HZ on Linux
  const used = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    if (Number(entry) !== postmaster && Number(fields[1]) !== postmaster) continue;
    used.set(Number(entry), ((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1000);
  }
  return used;
}

/** The table for the report and bench/README.md. */
export function renderWorkers(result: WorkersBenchResult): string {
  const lines = [`workers (${result.settings})`, 'workers | night s | VMs/min | MB/s read | scaling | queue delay median / p90 / max ms | PostgreSQL CPU ms/task | mean task s | model s | load', '-'.repeat(138)];
  for (const r of result.rows) {
    lines.push(`${r.workers}       | ${r.nightS.toFixed(1).padStart(7)} | ${r.vmsPerMinute.toFixed(1).padStart(7)} | ${r.readMBps.toFixed(3).padStart(9)} | ${r.scaling.toFixed(2).padStart(6)}× | ${`${r.queueDelayMedianMs} / ${r.queueDelayP90Ms} / ${r.queueDelayMaxMs}`.padStart(33)} | ${r.dbCpuMsPerTask.toFixed(1).padStart(22)} | ${r.meanTaskS.toFixed(1).padStart(11)} | ${r.modelNightS.toFixed(1).padStart(7)} | ${r.load.map((l) => l.toFixed(1)).join('-')}`);
  }
  const three = result.rows.find((r) => r.workers === 3);
  if (three !== undefined) lines.push(`target: 3 workers ≥ 2.5× one: ${three.scaling >= 2.5 ? 'pass' : 'FAIL'}; queue delay ≤ 20 ms (median): ${result.rows.every((r) => r.queueDelayMedianMs <= 20) ? 'pass' : 'FAIL'}`);
  return lines.join('\n');
}

// `node dist/bench/workers.js` runs this part alone.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  runWorkersBench((line) => process.stderr.write(`[bench workers] ${line}\n`)).then(
    (result) => process.stdout.write(`${renderWorkers(result)}\n`),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(2);
    },
  );
}
