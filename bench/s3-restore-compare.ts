/**
 * `coffer restore` from S3 by several builds, alternating, on one throw-away Ceph RADOS
 * Gateway (src/testing/ceph-s3.ts): the base disk backed up once by the first build, then
 * restored by each build in turn (the order reversed every other round), and two figures:
 *
 * - **the start**: `BENCH_S3R_FIRST` rounds (default 6) through a timing proxy in front of
 *   the gateway, each printing when (ms after the command's spawn) its first request and its
 *   first and tenth GET of a pack left: the round trips, the scrypt and the loading before
 *   the first data GET. `BENCH_S3R_TIMELINE=1` prints every request of one restore per build
 *   (start, duration, requests in flight, method, key, range, bytes).
 * - **the whole restore**: `BENCH_S3R_RUNS` rounds (default 0) straight to the gateway under
 *   `/usr/bin/time`: wall, user and system CPU seconds, peak RSS; medians per build.
 *
 * Run: `COFFER_BINS=/old/bin/coffer.js,bin/coffer.js node dist/bench/s3-restore-compare.js`
 * (needs `bench/work/disks-x1/base.raw`, made by the main benchmark at scale 1, or
 * `BENCH_S3R_DISK=FILE`; a 6 GiB memstore: `BENCH_S3R_MEMSTORE` bytes). Every restore goes
 * to `bench/work/run/s3-restore/out.raw`, removed at the end with the gateway.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCephS3 } from '../src/testing/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const disk = process.env.BENCH_S3R_DISK ?? path.join(root, 'bench', 'work', 'disks-x1', 'base.raw');
const bins = (process.env.COFFER_BINS ?? path.join(root, 'bin', 'coffer.js')).split(',').map((bin) => path.resolve(bin));
const firstRounds = Number(process.env.BENCH_S3R_FIRST ?? 6);
const runRounds = Number(process.env.BENCH_S3R_RUNS ?? 0);
const work = path.join(root, 'bench', 'work', 'run', 's3-restore');
const log = (line: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 23)}] ${line}\n`);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const rounds = (count: number) => Array.from({ length: count }, (_, i) => (i % 2 === 0 ? bins : [...bins].reverse()));

function exec(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('close', (code) => (code === 0 ? resolve(stderr) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${stderr.slice(-2000)}`))));
  });
}

/** A proxy that notes each request: start (ms after `mark()`), duration, in flight, what. */
async function startTimingProxy(upstream: string) {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let t0 = performance.now();
  let inFlight = 0;
  let seen: { start: number; line: string }[] = [];
  const server = http.createServer((request, response) => {
    const start = performance.now() - t0;
    const flying = ++inFlight;
    const forward = http.request({ host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers, agent }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
      let bytes = 0;
      answer.on('data', (data: Buffer) => (bytes += data.length));
      answer.on('end', () => {
        inFlight--;
        const took = performance.now() - t0 - start;
        seen.push({ start, line: `${start.toFixed(1).padStart(8)} +${took.toFixed(1).padStart(6)} ms ${String(flying).padStart(2)} ${request.method} ${decodeURIComponent(request.url ?? '').slice(0, 100)} ${request.headers.range ?? ''} ${bytes} B` });
      });
      answer.pipe(response);
    });
    forward.on('error', () => response.destroy());
    request.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    mark() {
      t0 = performance.now();
      seen = [];
    },
    requests: () => [...seen].sort((a, b) => a.start - b.start),
    close() {
      server.close();
      server.closeAllConnections();
      agent.destroy();
    },
  };
}

await rm(work, { recursive: true, force: true });
await mkdir(work, { recursive: true });
const s3 = await startCephS3({ memstoreBytes: Number(process.env.BENCH_S3R_MEMSTORE ?? 6 * 2 ** 30) });
const proxy = await startTimingProxy(s3.endpoint);
try {
  const bucket = await s3.createBucket('s3r');
  const env = { ...s3.env, COFFER_PASSWORD: 'bench-s3-restore', XDG_CACHE_HOME: path.join(work, 'cache') };
  const repo = (endpoint: string) => `s3:${endpoint}/${bucket}/repo`;
  const out = path.join(work, 'out.raw');
  /** One restore; `timed`: under /usr/bin/time, whose figures end its stderr. */
  const restore = (bin: string, endpoint: string, timed = false) => {
    const command = [process.execPath, bin, 'restore', '-r', repo(endpoint), 'vm1:latest', '--to', out];
    return timed ? exec('/usr/bin/time', ['-f', 'TIME %e %U %S %M', ...command], env) : exec(command[0] as string, command.slice(1), env);
  };
  await exec(process.execPath, [bins[0] as string, 'init', '-r', repo(s3.endpoint)], env);
  const started = Date.now();
  await exec(process.execPath, [bins[0] as string, 'backup', '-r', repo(s3.endpoint), '--vm', 'vm1', disk], env);
  log(`backup of ${disk} by ${bins[0]}: ${((Date.now() - started) / 1000).toFixed(1)} s`);

  if (process.env.BENCH_S3R_TIMELINE === '1') {
    for (const bin of bins) {
      await rm(out, { force: true });
      proxy.mark();
      await restore(bin, proxy.endpoint);
      const requests = proxy.requests();
      log(`every request of one restore by ${bin} (${requests.length}):\n${requests.map((r) => r.line).join('\n')}`);
    }
  }
  const firsts = new Map(bins.map((bin) => [bin, { first: [] as number[], tenth: [] as number[] }]));
  for (const order of rounds(firstRounds)) {
    for (const bin of order) {
      await rm(out, { force: true });
      proxy.mark();
      await restore(bin, proxy.endpoint);
      const requests = proxy.requests();
      const packs = requests.filter((r) => r.line.includes('/packs/'));
      const [first, tenth] = [packs[0]?.start ?? NaN, packs[9]?.start ?? NaN];
      firsts.get(bin)?.first.push(first);
      firsts.get(bin)?.tenth.push(tenth);
      log(`${bin}: first request ${requests[0]?.start.toFixed(0)} ms, first pack GET ${first.toFixed(0)} ms, tenth ${tenth.toFixed(0)} ms (load ${os.loadavg()[0]?.toFixed(1)})`);
    }
  }
  const whole = new Map(bins.map((bin) => [bin, { wall: [] as number[], cpu: [] as number[], rss: [] as number[] }]));
  for (const order of rounds(runRounds)) {
    for (const bin of order) {
      await rm(out, { force: true });
      await exec('sync', [], {});
      const stderr = await restore(bin, s3.endpoint, true);
      const [, wall, user, system, rss] = (/TIME (\S+) (\S+) (\S+) (\S+)/.exec(stderr) ?? []).map(Number);
      const figures = whole.get(bin);
      figures?.wall.push(wall as number);
      figures?.cpu.push((user as number) + (system as number));
      figures?.rss.push((rss as number) / 1024);
      log(`${bin}: wall ${wall} s, CPU ${((user as number) + (system as number)).toFixed(2)} s (user ${user}, system ${system}), peak RSS ${((rss as number) / 1024).toFixed(0)} MiB (load ${os.loadavg()[0]?.toFixed(1)})`);
    }
  }
  for (const bin of bins) {
    const f = firsts.get(bin);
    const w = whole.get(bin);
    if (firstRounds > 0 && f) log(`median ${bin}: first pack GET ${median(f.first).toFixed(0)} ms, tenth ${median(f.tenth).toFixed(0)} ms`);
    if (runRounds > 0 && w) log(`median ${bin}: wall ${median(w.wall).toFixed(2)} s, CPU ${median(w.cpu).toFixed(2)} s, peak RSS ${median(w.rss).toFixed(0)} MiB`);
  }
} finally {
  proxy.close();
  await s3.stop();
  await rm(work, { recursive: true, force: true });
}
