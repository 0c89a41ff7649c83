/**
 * The offsite part of the benchmark (issue #7, Benchmark; `BENCH_S3=0` skips it), against a
 * real S3 endpoint on this machine: a throw-away Ceph RADOS Gateway (src/testing/ceph-s3.ts),
 * a fresh cluster for each tool so neither pays for the other's objects.
 *
 * 1. **Backup and restore over S3**: the base disk backed up into a bucket and restored from
 *    it to a file, by Coffer and by restic's S3 backend (same gateway, same disk, page cache
 *    warm). Target: Coffer's wall time ≤ 0.5 × restic's, for each.
 * 2. **Sync of ten daily snapshots to a second bucket**: a local repository gets a backup of
 *    the disk changed a little each "day" (daily.ts, the prune part's churn), and each day
 *    `coffer sync` copies the new snapshot to a bucket through a counting TCP proxy
 *    (counting-proxy.ts). Bytes transferred (what crossed the wire towards the gateway:
 *    requests, headers and uploads) against the bytes the destination lacked (the growth of
 *    the bucket's objects, listed before and after). Target ≤ 1.05.
 *
 * @module
 */
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseS3Location, S3Backend } from '../src/repo/index.js';
import { MEMSTORE_BYTES, startCephS3, type CephS3 } from '../src/testing/index.js';
import type { BenchConfig } from './config.js';
import { applyDay, dataBlocks } from './daily.js';
import type { DiskLayout } from './disk.js';
import { run, timed, type Measurement } from './exec.js';
import { sameContent, settle, warm } from './measure.js';
import { PRUNE_SETTINGS } from './prune.js';
import { createTool } from './tools.js';
import { startCountingProxy } from './counting-proxy.js';

/** Days synced in part 2. */
export const OFFSITE_DAYS = 10;

/**
 * The gateway's memstore for a benchmark disk: the tests' 2 GiB, or 1.5 × the disk's virtual
 * size when that is more (scale 1: 6 GiB for a 4 GiB disk holding 2.4 GB of data, which a
 * tool stores plus the ten days' churn of part 2). Memstore is RAM taken as objects arrive;
 * one cluster runs at a time and is stopped before the next.
 */
export function offsiteMemstoreBytes(diskBytes: number): number {
  return Math.max(MEMSTORE_BYTES, Math.ceil((diskBytes * 1.5) / 2 ** 20) * 2 ** 20);
}

/** One tool's backup and restore over S3. */
export interface OffsiteToolResult {
  readonly tool: 'coffer' | 'restic';
  readonly backup?: Measurement;
  readonly restore?: Measurement;
  /** The restored image equals the base byte for byte. */
  readonly restoredIntact?: boolean;
  /** Coffer only: `verify --stored` (no passphrase) and `verify --read-data` of the bucket. */
  readonly verifyStored?: Measurement;
  readonly verifyReadData?: Measurement;
  readonly error?: string;
}

/** One day of part 2. */
export interface OffsiteDay {
  readonly day: number;
  readonly backup: Measurement;
  readonly sync: Measurement;
  /** Bytes sent towards the gateway by the sync (through the proxy). */
  readonly bytesSent: number;
  /** Bytes received from it. */
  readonly bytesReceived: number;
  /** How much the destination's objects grew: what it lacked. */
  readonly bytesLacked: number;
}

export interface OffsiteResult {
  readonly tools: readonly OffsiteToolResult[];
  readonly backupRatio: number | null;
  readonly restoreRatio: number | null;
  readonly days: readonly OffsiteDay[];
  /** Sum of bytesSent / sum of bytesLacked over the days. */
  readonly syncRatio: number | null;
  /** The same without the first day (the full copy): the daily syncs alone. */
  readonly syncRatioDaily: number | null;
  readonly error?: string;
}

const VM = 'offsite';
const FIRST_DAY = Date.UTC(2026, 0, 1);
const DAY_MS = 86_400_000;

/** Runs both halves; failures are recorded in the result, not thrown. */
export async function runOffsite(
  cfg: BenchConfig,
  opts: { base: string; layout: DiskLayout; peers: readonly ('restic')[]; log: (line: string) => void },
): Promise<OffsiteResult> {
  const { base, layout, log } = opts;
  const dir = path.join(cfg.runDir, 'offsite');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const tools: OffsiteToolResult[] = [];
  try {
    for (const name of ['coffer', ...opts.peers] as const) tools.push(await backupAndRestore(cfg, name, base, dir, log));
    let days: OffsiteDay[] = [];
    let error: string | undefined;
    try {
      // BENCH_S3_SYNC=0: the backup and restore rows alone (part 2 takes ten backups and syncs).
      if (process.env.BENCH_S3_SYNC !== '0') days = await syncDays(cfg, base, layout, dir, log);
    } catch (err) {
      error = `sync: ${message(err)}`;
      log(`offsite ${error}`);
    }
    const coffer = tools.find((t) => t.tool === 'coffer');
    const restic = tools.find((t) => t.tool === 'restic');
    const ratio = (a?: Measurement, b?: Measurement) => (a !== undefined && b !== undefined && b.wallS > 0 ? a.wallS / b.wallS : null);
    const sent = days.reduce((s, d) => s + d.bytesSent, 0);
    const lacked = days.reduce((s, d) => s + d.bytesLacked, 0);
    const dailySent = days.slice(1).reduce((s, d) => s + d.bytesSent, 0);
    const dailyLacked = days.slice(1).reduce((s, d) => s + d.bytesLacked, 0);
    return {
      tools,
      backupRatio: ratio(coffer?.backup, restic?.backup),
      restoreRatio: ratio(coffer?.restore, restic?.restore),
      days,
      syncRatio: days.length > 0 && lacked > 0 ? sent / lacked : null,
      syncRatioDaily: days.length > 1 && dailyLacked > 0 ? dailySent / dailyLacked : null,
      ...(error !== undefined ? { error } : {}),
    };
  } finally {
    if (!cfg.keep) await rm(dir, { recursive: true, force: true });
  }
}

/** Part 1 for one tool, in its own cluster. */
async function backupAndRestore(cfg: BenchConfig, name: 'coffer' | 'restic', base: string, dir: string, log: (line: string) => void): Promise<OffsiteToolResult> {
  const s3 = await startCephS3({ memstoreBytes: offsiteMemstoreBytes(cfg.diskBytes) });
  const restoreDir = path.join(dir, `${name}-restore`);
  const restoreEnv = withEnv(s3.env);
  try {
    const bucket = await s3.createBucket(`bench-${name}`);
    const repo = `s3:${s3.endpoint}/${bucket}/repo`; // both tools take s3:http://HOST:PORT/BUCKET/PREFIX
    const tool = createTool(name, { repo, home: path.join(dir, `${name}-home`), password: cfg.password, cofferBin: cfg.cofferBin });
    await mkdir(restoreDir, { recursive: true });
    await tool.init();
    await warm([base]);
    await settle();
    const backup = (await tool.backup(VM, base, 'offsite')).m;
    log(`offsite ${name}: backup to S3 ${backup.wallS.toFixed(1)} s, ${backup.cpuS.toFixed(1)} CPU-s (load ${loadAverage()})`);
    await settle();
    const restored = await tool.restore(VM, base, restoreDir);
    log(`offsite ${name}: restore from S3 ${restored.m.wallS.toFixed(1)} s, ${restored.m.cpuS.toFixed(1)} CPU-s (load ${loadAverage()})`);
    const restoredIntact = await sameContent(restored.file, base);
    if (!restoredIntact) log(`offsite ${name}: the restored image DIFFERS from the base`);
    if (name !== 'coffer') return { tool: name, backup, restore: restored.m, restoredIntact };
    // The storage side's check (no passphrase) against the key holder's full read.
    const verifyStored = (await timed(process.execPath, [cfg.cofferBin, 'verify', '--stored', '-r', repo, '--strict'])).m;
    const verifyReadData = (await timed(process.execPath, [cfg.cofferBin, 'verify', '--read-data', '-r', repo], { env: { COFFER_PASSWORD: cfg.password, XDG_CACHE_HOME: path.join(dir, 'coffer-home', 'cache') } })).m;
    log(`offsite coffer: verify --stored ${verifyStored.wallS.toFixed(1)} s, verify --read-data ${verifyReadData.wallS.toFixed(1)} s`);
    return { tool: name, backup, restore: restored.m, restoredIntact, verifyStored, verifyReadData };
  } catch (err) {
    log(`offsite ${name}: ${message(err)}`);
    return { tool: name, error: message(err) };
  } finally {
    restoreEnv();
    await rm(restoreDir, { recursive: true, force: true });
    await s3.stop();
  }
}

/** Part 2: ten days of backup to a local repository, each followed by a sync to a bucket. */
async function syncDays(cfg: BenchConfig, base: string, layout: DiskLayout, dir: string, log: (line: string) => void): Promise<OffsiteDay[]> {
  const s3: CephS3 = await startCephS3({ memstoreBytes: offsiteMemstoreBytes(cfg.diskBytes) });
  const proxy = await startCountingProxy(Number(new URL(s3.endpoint).port));
  const restoreEnv = withEnv(s3.env);
  const disk = path.join(dir, 'vms', VM, 'disk.raw');
  const source = path.join(dir, 'sync-source');
  try {
    const bucket = await s3.createBucket('bench-sync');
    const dest = `s3:${proxy.endpoint}/${bucket}/copy`;
    const direct = new S3Backend(parseS3Location(`s3:${s3.endpoint}/${bucket}/copy`), { credentials: s3.credentials });
    const env = { COFFER_PASSWORD: cfg.password, COFFER_TO_PASSWORD: `${cfg.password}-offsite`, XDG_CACHE_HOME: path.join(dir, 'sync-home', 'cache') };
    const coffer = (args: string[]) => timed(process.execPath, [cfg.cofferBin, ...args], { env });
    await mkdir(path.dirname(disk), { recursive: true });
    await run('cp', ['--sparse=always', base, disk]);
    const blocks = await dataBlocks(base, layout);
    await coffer(['init', '-r', source]);
    // The destination has its own passphrase (init reads COFFER_PASSWORD).
    await timed(process.execPath, [cfg.cofferBin, 'init', '-r', dest], { env: { ...env, COFFER_PASSWORD: env.COFFER_TO_PASSWORD } });
    const days: OffsiteDay[] = [];
    try {
      for (let day = 0; day < OFFSITE_DAYS; day++) {
        if (day > 0) await applyDay(disk, layout, blocks, PRUNE_SETTINGS.churn, day);
        await warm([disk]);
        await settle();
        const backup = await coffer(['backup', '-r', source, '--vm', VM, '--time', new Date(FIRST_DAY + day * DAY_MS).toISOString(), '--json', disk]);
        const before = await storedBytes(direct);
        const [sent0, received0] = [proxy.sent(), proxy.received()];
        const sync = await coffer(['sync', '-r', source, '--to', dest, '--json']);
        const record: OffsiteDay = {
          day,
          backup: backup.m,
          sync: sync.m,
          bytesSent: proxy.sent() - sent0,
          bytesReceived: proxy.received() - received0,
          bytesLacked: (await storedBytes(direct)) - before,
        };
        days.push(record);
        log(`offsite sync day ${day}: ${mib(record.bytesSent)} sent for ${mib(record.bytesLacked)} lacked (${(record.bytesSent / Math.max(1, record.bytesLacked)).toFixed(3)}×), ${sync.m.wallS.toFixed(1)} s`);
      }
    } finally {
      direct.destroy();
    }
    return days;
  } finally {
    restoreEnv();
    await rm(disk, { force: true });
    await proxy.close();
    await s3.stop();
  }
}

/** The bytes of every object under the backend's prefix. */
async function storedBytes(backend: S3Backend): Promise<number> {
  let total = 0;
  for await (const entry of backend.list('')) total += entry.size;
  return total;
}

/** Sets variables in this process's environment (the tools inherit it); returns the undo. */
function withEnv(vars: Record<string, string>): () => void {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return () => {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** The 1-minute load average, for the log: wall times mean little on a loaded machine. */
const loadAverage = () => (os.loadavg()[0] ?? 0).toFixed(1);

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function message(err: unknown): string {
  return err instanceof Error ? err.message.split('\n').slice(0, 3).join(' ') : String(err);
}

/** The table printed after the others. */
export function renderOffsite(r: OffsiteResult): string {
  const lines = ['offsite (S3, Ceph RGW)   | coffer s | restic s | ratio | target | result', '-'.repeat(74)];
  const row = (what: string, pick: (t: OffsiteToolResult) => Measurement | undefined, ratio: number | null) => {
    const c = r.tools.find((t) => t.tool === 'coffer');
    const p = r.tools.find((t) => t.tool === 'restic');
    const show = (t?: OffsiteToolResult) => (t === undefined ? '-' : t.error !== undefined ? 'error' : (pick(t)?.wallS.toFixed(1) ?? '-'));
    const verdict = ratio === null ? 'n/a' : ratio <= 0.5 ? 'pass' : 'FAIL';
    lines.push(`${what.padEnd(24)} | ${show(c).padStart(8)} | ${show(p).padStart(8)} | ${ratio === null ? '   - ' : ratio.toFixed(2).padStart(5)} |  <=0.5 | ${verdict}`);
  };
  row('backup to S3', (t) => t.backup, r.backupRatio);
  row('restore from S3', (t) => t.restore, r.restoreRatio);
  const cpu = (m?: Measurement) => (m === undefined ? '-' : m.cpuS.toFixed(1));
  lines.push(`CPU s (user+sys), backup/restore: ${r.tools.map((t) => `${t.tool} ${cpu(t.backup)}/${cpu(t.restore)}`).join(', ')}`);
  const c = r.tools.find((t) => t.tool === 'coffer');
  if (c?.verifyStored !== undefined && c.verifyReadData !== undefined) {
    lines.push(`coffer verify --stored (no passphrase) ${c.verifyStored.wallS.toFixed(1)} s (${c.verifyStored.cpuS.toFixed(1)} CPU-s); verify --read-data ${c.verifyReadData.wallS.toFixed(1)} s (${c.verifyReadData.cpuS.toFixed(1)} CPU-s)`);
  }
  const sent = r.days.reduce((s, d) => s + d.bytesSent, 0);
  const lacked = r.days.reduce((s, d) => s + d.bytesLacked, 0);
  const verdict = r.syncRatio === null ? 'n/a' : r.syncRatio <= 1.05 ? 'pass' : 'FAIL';
  if (r.days.length > 0 || r.error !== undefined) lines.push(
    `sync ${r.days.length} days: ${mib(sent)} sent for ${mib(lacked)} the destination lacked = ${r.syncRatio === null ? '-' : r.syncRatio.toFixed(3)}× (target <= 1.05: ${verdict})`,
  );
  if (r.syncRatioDaily !== null) lines.push(`  of which days 1-${r.days.length - 1} (the daily syncs alone): ${r.syncRatioDaily.toFixed(3)}×`);
  if (r.error !== undefined) lines.push(`error: ${r.error}`);
  return lines.join('\n');
}
