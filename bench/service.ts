/**
 * The service part of `npm run bench` (issue #8's targets; `BENCH_SERVICE=0` skips it), also
 * runnable alone as `node dist/bench/service.js`:
 *
 * 1. **Planning**: the planner over 600 VMs on 160 hosts (the site size of the issue), the
 *    first plan of a night (target < 1 s).
 * 2. **Starting a night's run**: the real TaskRunner on a real SQLite file starts a run of the
 *    600 VMs (its 600 tasks written, the first dispatch planned), with every host's limit 0
 *    so that no worker is spawned: the scheduler's own cost. CPU per task = CPU of the start
 *    and of 20 further dispatch passes over the 600 queued tasks, divided by 600 × passes.
 * 3. **API latency and RSS**: `coffer server` as a child process (plain HTTP on 127.0.0.1)
 *    with 100,000 backup tasks in ≈170 runs of history and a repository of
 *    `BENCH_SNAPSHOTS` (default 100,000) snapshot manifests (cloned from one real backup,
 *    written through a backend whose fsync is a no-op: built once, cached in BENCH_DIR);
 *    autocannon (10 connections, 10 s each) on paged lists of runs, tasks and snapshots (first
 *    pages, deep pages by offset and by keyset cursor): p50/p99 (target p99 < 50 ms), then the
 *    server's RSS (target < 200 MiB). The first snapshot list builds the server's snapshot
 *    index (every manifest read once; a server that ran before has it in its state database).
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { planStarts, type ConcurrencyLimits } from '../src/jobs/index.js';
import { siteInventory, SITE_HOSTS, SITE_VMS } from './site-inventory.js';
import { initRepository, listSnapshots, LocalBackend, openRepository, saveSnapshot, type Backend } from '../src/repo/index.js';
import { TokenStore, UserStore } from '../src/server/auth/index.js';
import { openStateDatabase } from '../src/server/state/index.js';
import { TaskRunner, type VmTarget } from '../src/server/tasks/index.js';

const VMS = SITE_VMS;
const HOSTS = SITE_HOSTS;
const HISTORY_TASKS = 100_000;
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const COFFER_BIN = path.join(PROJECT_ROOT, 'bin', 'coffer.js');

export interface ServiceBenchResult {
  planMs: number;
  startRunMs: number;
  schedulerCpuUsPerTask: number;
  snapshots: number;
  historyTasks: number;
  firstSnapshotListMs: number;
  latency: { name: string; p50: number; p99: number; requests: number; errors: number; cpuMsPerRequest: number }[];
  rssMiB: number;
  /** The measured server's peak RSS (VmHWM): the walk and the load included. */
  peakRssMiB: number;
  /** RSS of the server that built the snapshot index, right after. */
  buildRssMiB: number;
}

/** Runs the three parts; `workDir` keeps the cached snapshot repository. */
export async function runServiceBench(workDir: string, log: (line: string) => void): Promise<ServiceBenchResult> {
  const planMs = timePlanning();
  log(`service: planning ${VMS} VMs on ${HOSTS} hosts: ${planMs.toFixed(1)} ms`);
  const runDir = path.join(workDir, `service-run-${process.pid}`);
  await mkdir(runDir, { recursive: true });
  try {
    const start = await timeNightStart(runDir);
    log(`service: start of a night's run: ${start.startRunMs.toFixed(0)} ms; scheduler CPU ${start.cpuUsPerTask.toFixed(1)} µs per task and pass`);
    const snapshotCount = Number(process.env.BENCH_SNAPSHOTS ?? 100_000);
    const repo = await snapshotRepository(path.join(workDir, `service-snapshots-${snapshotCount}`), snapshotCount, log);
    const api = await measureApi(runDir, repo, snapshotCount, log);
    return { planMs, startRunMs: start.startRunMs, schedulerCpuUsPerTask: start.cpuUsPerTask, snapshots: snapshotCount, historyTasks: HISTORY_TASKS, ...api };
  } finally {
    await rm(runDir, { recursive: true, force: true });
  }
}

/** A printable table of the result with the targets. */
export function renderService(r: ServiceBenchResult): string {
  const ok = (yes: boolean) => (yes ? 'ok' : 'MISSED');
  const lines = [
    `Service (600 VMs on 160 hosts; ${r.historyTasks} tasks and ${r.snapshots} snapshots in history)`,
    `  plan a night                     ${r.planMs.toFixed(1).padStart(9)} ms   target < 1000 ms   ${ok(r.planMs < 1000)}`,
    `  start a night's run (600 tasks)  ${r.startRunMs.toFixed(0).padStart(9)} ms`,
    `  scheduler CPU per task and pass  ${r.schedulerCpuUsPerTask.toFixed(1).padStart(9)} µs`,
    `  first snapshot list (index built)${r.firstSnapshotListMs.toFixed(0).padStart(9)} ms   RSS then ${r.buildRssMiB.toFixed(0)} MiB`,
    ...r.latency.map((l) => `  ${l.name.padEnd(32)} p50 ${l.p50.toFixed(1).padStart(6)} ms  p99 ${l.p99.toFixed(1).padStart(6)} ms  server CPU ${l.cpuMsPerRequest.toFixed(2)} ms/request  (${l.requests} requests, ${l.errors} errors/timeouts)  target p99 < 50 ms   ${ok(l.requests > 0 && l.p99 < 50 && l.errors === 0)}`),
    `  server RSS after the load (restarted over the built index) ${r.rssMiB.toFixed(0).padStart(4)} MiB  target < 200 MiB   ${ok(r.rssMiB < 200)}`,
    `  server peak RSS (VmHWM: the walk and the load)             ${r.peakRssMiB.toFixed(0).padStart(4)} MiB  target < 200 MiB   ${ok(r.peakRssMiB < 200)}`,
  ];
  return lines.join('\n');
}


function timePlanning(): number {
  const vms = siteInventory();
  const limits: ConcurrencyLimits = { global: 48, datastore: { default: 6 }, repository: { default: 24 } };
  const now = new Date(Date.UTC(2026, 2, 2, 22));
  planStarts(vms, { running: [], limits, now });
  const repeat = 20;
  const t0 = performance.now();
  for (let i = 0; i < repeat; i++) planStarts(vms, { running: [], limits, now });
  return (performance.now() - t0) / repeat;
}

async function timeNightStart(dir: string): Promise<{ startRunMs: number; cpuUsPerTask: number }> {
  const state = await openStateDatabase({ file: path.join(dir, 'night.db') });
  // Every host's limit 0: the tasks are planned and stay queued, no worker is spawned.
  const runner = new TaskRunner(state.db, { threads: 1, tickMs: 3_600_000, limits: { host: { default: 0 } } });
  try {
    await runner.start();
    const vms: VmTarget[] = siteInventory().map((t) => ({ vm: t.id, host: t.host, ...(t.datastore === undefined ? {} : { datastore: t.datastore }), repository: { name: t.repository, url: path.join(dir, 'none') }, source: { images: ['/nonexistent'] } }));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await runner.startRun({ job: 'nightly', reason: 'schedule', owner: 'bench', vms });
    await runner.dispatch();
    const startRunMs = performance.now() - t0;
    const passes = 20;
    for (let i = 0; i < passes; i++) await runner.dispatch();
    const cpu = process.cpuUsage(cpu0);
    return { startRunMs, cpuUsPerTask: (cpu.user + cpu.system) / (VMS * (passes + 1)) };
  } finally {
    await runner.close();
    await state.close();
  }
}

/** A backend whose sync is a no-op: only for building the benchmark's many manifests fast. */
function withoutSync(backend: Backend): Backend {
  return new Proxy(backend, { get: (target, key, receiver) => (key === 'sync' ? async () => {} : Reflect.get(target, key, receiver) as unknown) });
}

/** A repository with `count` snapshots of 600 VMs (one real backup, its manifest cloned); cached. */
async function snapshotRepository(dir: string, count: number, log: (line: string) => void): Promise<{ url: string; passphraseFile: string }> {
  const url = path.join(dir, 'repo');
  const passphraseFile = path.join(dir, 'pass');
  const done = path.join(dir, 'complete');
  if (existsSync(done)) return { url, passphraseFile };
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(passphraseFile, 'bench\n');
  await initRepository(new LocalBackend(url), { passphrase: 'bench', kdf: { N: 1024, r: 8, p: 1 } });
  const image = path.join(dir, 'tiny.raw');
  await writeFile(image, Buffer.alloc(1024 * 1024, 7));
  await runCoffer(['backup', '-r', url, '--password-file', passphraseFile, '--vm', 'vm0', image]);
  const repo = await openRepository(withoutSync(new LocalBackend(url)), { passphrase: 'bench' });
  try {
    const [template] = await listSnapshots(repo);
    if (template === undefined) throw new Error('the template backup made no snapshot');
    const { id: _id, ...manifest } = template;
    const t0 = Date.now();
    const base = Date.UTC(2025, 0, 1);
    for (let i = 1; i < count; i++) {
      const night = Math.floor(i / VMS);
      await saveSnapshot(repo, { ...manifest, vm: `vm${i % VMS}`, time: new Date(base + night * 86_400_000 + (i % VMS) * 1000).toISOString() });
      if (i % 10_000 === 0) log(`service: ${i} of ${count} snapshot manifests written (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  } finally {
    await repo.close();
  }
  await writeFile(done, `${count}\n`);
  return { url, passphraseFile };
}

async function measureApi(dir: string, repo: { url: string; passphraseFile: string }, snapshotCount: number, log: (line: string) => void): Promise<Pick<ServiceBenchResult, 'latency' | 'rssMiB' | 'peakRssMiB' | 'buildRssMiB' | 'firstSnapshotListMs'>> {
  const data = path.join(dir, 'data');
  await mkdir(data, { recursive: true });
  await writeFile(path.join(data, 'coffer.yaml'), `repositories:\n  - name: main\n    url: ${repo.url}\n    passphrase-file: ${repo.passphraseFile}\nhosts:\n  - name: host0\nvms:\n  - name: vm0\n    host: host0\n    source: { images: [/nonexistent] }\nmetrics:\n  enabled: false\n# The seeded history spans 167 nights: kept whole (the default keeps 90 days).\ntasks:\n  history: 400d\n`);
  const token = await seedState(path.join(data, 'state.db'));
  log(`service: ${HISTORY_TASKS} tasks of history written; starting the server`);
  const headers = { authorization: `Bearer ${token}` };
  // The first start builds the snapshot index (every manifest read once); the measured server
  // is a second start over that state database, as a server that ran before starts.
  const building = await startServer(data);
  let firstSnapshotListMs: number;
  let buildRssMiB: number;
  try {
    const t0 = performance.now();
    const first = await fetch(`${building.url}/api/v1/repositories/main/snapshots?limit=50`, { headers });
    const listed = (await first.json()) as { total?: number };
    firstSnapshotListMs = performance.now() - t0;
    buildRssMiB = await rssOf(building.child.pid ?? 0);
    log(`service: first snapshot list (builds the index): ${firstSnapshotListMs.toFixed(0)} ms (status ${first.status}, ${listed.total ?? '?'} of ${snapshotCount} snapshots), RSS then ${buildRssMiB.toFixed(0)} MiB`);
  } finally {
    await building.stop();
  }
  const server = await startServer(data);
  try {
    const t1 = performance.now();
    await (await fetch(`${server.url}/api/v1/repositories/main/snapshots?limit=50`, { headers })).arrayBuffer();
    log(`service: first snapshot list after a restart: ${(performance.now() - t1).toFixed(0)} ms`);
    // Deep pages by keyset cursor: the `next` after `rows` rows, walked page by page as a
    // client would (offset stops at 10,000 on these lists: paging.ts).
    const WALK_PAGE = Number(process.env.BENCH_WALK_PAGE ?? 50);
    const cursorAt = async (list: string, rows: number) => {
      let next = '';
      for (let seen = 0; seen < rows; seen += WALK_PAGE) {
        const page = `${list}${list.includes('?') ? '&' : '?'}limit=${WALK_PAGE}${next === '' ? '' : `&cursor=${encodeURIComponent(next)}`}`;
        const answer = (await (await fetch(`${server.url}${page}`, { headers })).json()) as { next?: string | null };
        if (answer.next === null || answer.next === undefined) break;
        next = answer.next;
      }
      return encodeURIComponent(next);
    };
    // The server's history retention may have removed the oldest runs at start: page in what is left.
    const tasksLeft = ((await (await fetch(`${server.url}/api/v1/tasks?limit=1`, { headers })).json()) as { total: number }).total;
    log(`service: ${tasksLeft} tasks in the server's history after its start`);
    const tasksCursor = await cursorAt('/api/v1/tasks', Math.floor(tasksLeft / 2));
    const snapshotsCursor = await cursorAt('/api/v1/repositories/main/snapshots', 90_000);
    log(`service: server memory after walking the cursors in pages of ${WALK_PAGE}: ${await memoryOf(server.child.pid ?? 0)}`);
    const targets: [string, string][] = [
      ['GET /runs?limit=50', '/api/v1/runs?limit=50'],
      ['GET /runs?limit=50&offset=100', '/api/v1/runs?limit=50&offset=100'],
      ['GET /tasks?limit=50', '/api/v1/tasks?limit=50'],
      ['GET /tasks?limit=50&offset=10000', '/api/v1/tasks?limit=50&offset=10000'],
      ['GET /tasks?cursor=(half way)', `/api/v1/tasks?limit=50&cursor=${tasksCursor}`],
      ['GET /repositories/main/snapshots', '/api/v1/repositories/main/snapshots?limit=50'],
      ['GET …/snapshots?vm=vm7', '/api/v1/repositories/main/snapshots?limit=50&vm=vm7'],
      ['GET …/snapshots?offset=10000', '/api/v1/repositories/main/snapshots?limit=50&offset=10000'],
      ['GET …/snapshots?cursor=(at 90000)', `/api/v1/repositories/main/snapshots?limit=50&cursor=${snapshotsCursor}`],
    ];
    const latency: ServiceBenchResult['latency'] = [];
    for (const [name, url] of targets) {
      const once = await fetch(`${server.url}${url}`, { headers });
      if (once.status !== 200) log(`service: ${name}: status ${once.status}: ${(await once.text()).slice(0, 200)}`);
      else await once.arrayBuffer();
      const cpu0 = await processCpuMs(server.child.pid ?? 0);
      const r = await autocannon({ url: `${server.url}${url}`, connections: 10, duration: Number(process.env.BENCH_SERVICE_SECONDS ?? 10), headers });
      // The server's own CPU per answer: what the machine's load does not change much (latency under a load of 10+ does).
      const cpuMsPerRequest = r.requests.total === 0 ? 0 : ((await processCpuMs(server.child.pid ?? 0)) - cpu0) / r.requests.total;
      // A request still unanswered at autocannon's 10 s timeout counts as an error.
      const errors = r.errors + r.non2xx + (r.timeouts ?? 0);
      latency.push({ name, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total, errors, cpuMsPerRequest });
      log(`service: ${name}: p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ${r.requests.total} requests, ${errors} errors or timeouts, server CPU ${cpuMsPerRequest.toFixed(2)} ms per request`);
    }
    log(`service: server memory after the load: ${await memoryOf(server.child.pid ?? 0)}`);
    return { latency, rssMiB: await rssOf(server.child.pid ?? 0), peakRssMiB: await rssOf(server.child.pid ?? 0, 'VmHWM'), buildRssMiB, firstSnapshotListMs };
  } finally {
    await server.stop();
  }
}

/** VmRSS, RssAnon, RssFile and VmHWM of a process, from /proc/PID/status, as a line. */
async function memoryOf(pid: number): Promise<string> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return ['VmRSS', 'RssAnon', 'RssFile', 'VmHWM'].map((k) => `${k} ${(Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024).toFixed(0)} MiB`).join(', ');
}

/** VmRSS (or VmHWM: the peak) of a process, MiB. */
async function rssOf(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
}

/** CPU time (user + system) a process has used, ms, from /proc/PID/stat (clock ticks of 10 ms). */
async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 10;
}

/** The state database with a bench admin token and 100,000 finished backup tasks in runs of 600. */
async function seedState(file: string): Promise<string> {
  const state = await openStateDatabase({ file });
  try {
    const users = new UserStore(state.db, Date.now);
    const user = await users.create('bench', 'bench password 123', { grants: [{ role: 'Admin', path: '/' }], mustChangePassword: false });
    const { secret } = await new TokenStore(state.db, Date.now).create(user.id, 'bench', { grants: [{ role: 'Admin', path: '/' }], expiresAt: null });
    const base = Date.now() - 200 * 86_400_000;
    const nights = Math.ceil(HISTORY_TASKS / VMS);
    for (let n = 0; n < nights; n++) {
      const runId = randomUUID();
      const at = base + n * 86_400_000;
      const count = Math.min(VMS, HISTORY_TASKS - n * VMS);
      await state.db.transaction().execute(async (trx) => {
        await trx.insertInto('runs').values({ id: runId, job: 'nightly', reason: 'schedule', status: 'succeeded', owner: 'scheduler', firing: at, window_end: null, cancel_at_window_end: 0, vms: JSON.stringify(Array.from({ length: count }, (_, i) => `vm${i}`)), detail: `${count} of ${count} VMs backed up`, created_at: at, ended_at: at + 6 * 3_600_000 }).execute();
        for (let i = 0; i < count; i += 200) {
          await trx.insertInto('tasks').values(Array.from({ length: Math.min(200, count - i) }, (_, k) => {
            const v = i + k;
            const started = at + v * 30_000;
            return {
              id: randomUUID(), run_id: runId, kind: 'backup', owner: 'scheduler', status: 'succeeded', vm: `vm${v}`, host: `host${v % HOSTS}`, datastore: null, repository: 'main', job: 'nightly',
              spec: '{}', attempt: 1, retry_of: null, not_before: null, progress: 1, created_at: at, started_at: started, ended_at: started + 600_000, error_code: null, error_message: null,
              result: JSON.stringify({ mode: 'incremental', bytesLogical: 2 ** 34, bytesRead: 2 ** 28, bytesNew: 2 ** 24, bytesStored: 2 ** 23, durationMs: 600_000, warnings: [] }),
            };
          })).execute();
        }
      });
    }
    return secret;
  } finally {
    await state.close();
  }
}

interface AutocannonResult {
  latency: { p50: number; p99: number };
  requests: { total: number };
  errors: number;
  non2xx: number;
  timeouts?: number;
}
function autocannon(options: { url: string; connections: number; duration: number; headers: Record<string, string> }): Promise<AutocannonResult> {
  const run = createRequire(import.meta.url)('autocannon') as (o: unknown, cb: (error: Error | null, result: AutocannonResult) => void) => void;
  return new Promise((resolve, reject) => run(options, (error, result) => (error === null ? resolve(result) : reject(error))));
}

function runCoffer(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [COFFER_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`coffer ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

const SYSTEMD_UNIT = path.join(PROJECT_ROOT, 'contrib', 'coffer-server.service');

/**
 * The V8 flags the server runs with: the `NODE_OPTIONS` of contrib/coffer-server.service (a
 * 2 MiB young generation per semi-space, the old generation capped at 512 MiB: the unit says
 * why), so the bench measures what the unit runs.
 */
async function unitNodeOptions(): Promise<string> {
  const unit = await readFile(SYSTEMD_UNIT, 'utf8');
  const match = /^Environment="?NODE_OPTIONS=([^"\n]*)"?$/m.exec(unit);
  if (match === null) throw new Error(`${SYSTEMD_UNIT} sets no NODE_OPTIONS`);
  return match[1] as string;
}

async function startServer(data: string): Promise<{ child: ChildProcess; url: string; stop(): Promise<void> }> {
  // The server runs with the V8 settings the systemd unit gives it (contrib/coffer-server.service).
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? (await unitNodeOptions())).split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, COFFER_BIN, 'server', '--data', data, '--listen', '127.0.0.1:0', '--insecure-http'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`coffer server did not start within 60 s: ${err}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /listening on (\S+)/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    child.once('close', (code) => reject(new Error(`coffer server exited (${code}): ${err}`)));
  });
  return {
    child,
    url,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// Alone: node dist/bench/service.js
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const workDir = process.env.BENCH_DIR ?? path.join(PROJECT_ROOT, 'bench', 'work');
  const result = await runServiceBench(workDir, (line) => process.stdout.write(`${line}\n`));
  process.stdout.write(`\n${renderService(result)}\n`);
  process.stdout.write(`(${os.cpus().length} CPUs)\n`);
}
