/**
 * Live VMs (issue #5): the benchmark's base disk in a running QEMU (TCG, no guest OS; guest
 * writes by HMP qemu-io), backed up by `coffer backup --qemu`; then ~1% of the disk rewritten
 * (half as scattered 4 KiB writes, half as 4 MiB runs) and an incremental. Then instant
 * recovery: how long `coffer serve` takes to serve its first NBD read, and nbdcopy through
 * its export against nbdcopy through `qemu-nbd` serving the same disk restored to a raw file.
 *
 * Targets: the incremental reads <= 1.1x the bytes the guest dirtied at the bitmap's
 * granularity and takes <= 0.05x the full backup's time; first read <= 1 s; nbdcopy through
 * Coffer >= 0.5x the speed through qemu-nbd.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BenchConfig } from './config.js';
import { run, timed, type Measurement } from './exec.js';
import { onePercentWrites } from './one-percent-writes.js';
import { nbdcopyThroughQemuNbd, stopProcess } from './qemu-nbd-copy.js';
import { NbdClient } from '../src/nbd/index.js';
import { qemuIo, QmpClient } from '../src/qmp/index.js';
import { startTestVm } from '../src/testing/index.js';

/** QEMU's default dirty bitmap granularity for a qcow2 with 64 KiB clusters. */
const BITMAP_GRANULARITY = 64 * 1024;

export interface LiveResult {
  readonly full: Measurement & { bytesRead: number; bytesStored: number; blockSize: number };
  readonly incremental: Measurement & { bytesRead: number; bytesNew: number; bytesStored: number };
  /** A second incremental with nothing written since: the fixed cost (process, key, QMP, capture). */
  readonly unchanged: Measurement;
  /** `coffer restore` of the incremental to a raw file. */
  readonly restore: Measurement;
  readonly guestBytesWritten: number;
  /** Bytes the guest's writes dirty at the bitmap's granularity. */
  readonly dirtyBytes: number;
  readonly serveFirstReadS: number;
  readonly nbdcopyCofferS: number;
  readonly nbdcopyQemuNbdS: number;
}

export interface LiveTarget {
  readonly name: string;
  readonly value: number;
  readonly limit: string;
  readonly pass: boolean;
}

/** Runs the live section in `cfg.runDir/live` and removes it after. */
export async function runLive(cfg: BenchConfig, baseRaw: string, log: (line: string) => void): Promise<LiveResult> {
  const dir = path.join(cfg.runDir, 'live');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const env = { COFFER_PASSWORD: cfg.password };
  const repo = path.join(dir, 'repo');
  const coffer = (args: string[]) => timed(process.execPath, [cfg.cofferBin, ...args], { env });
  try {
    log('live: converting the base disk to qcow2 and starting QEMU');
    const qcow2 = path.join(dir, 'vm.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', baseRaw, qcow2]);
    const benchMonitor = path.join(dir, 'bench.qmp');
    const vm = await startTestVm({ disks: [{ name: 'disk0', size: cfg.diskBytes, from: qcow2 }], memoryMiB: 128, extraArgs: ['-qmp', `unix:${benchMonitor},server=on,wait=off`] });
    await rm(qcow2, { force: true });
    const monitor = await QmpClient.connect({ path: benchMonitor });
    try {
      await run(process.execPath, [cfg.cofferBin, 'init', '-r', repo], { env });
      log('live: full backup of the running VM');
      const full = await coffer(['backup', '-r', repo, '--vm', 'live', '--qemu', vm.qmpSocket, '--json']);
      const fullJson = JSON.parse(full.stdout) as { bytesRead: number; bytesStored: number };
      const blockSize = await diskBlockSize(cfg, repo, env);

      log('live: ~1% of the disk rewritten by the guest');
      const { written, dirty } = await guestWrites(monitor, cfg.diskBytes);
      log('live: incremental backup');
      const incr = await coffer(['backup', '-r', repo, '--vm', 'live', '--qemu', vm.qmpSocket, '--json']);
      const incrJson = JSON.parse(incr.stdout) as { bytesRead: number; bytesNew: number; bytesStored: number };
      log('live: an incremental with nothing written since');
      const unchanged = await coffer(['backup', '-r', repo, '--vm', 'live', '--qemu', vm.qmpSocket, '--json']);

      log('live: instant recovery');
      const serveFirstReadS = await firstReadLatency(cfg, repo, path.join(dir, 'serve.sock'), env);
      const nbdcopyCofferS = await throughCoffer(cfg, repo, path.join(dir, 'serve2.sock'), env);
      const restored = path.join(dir, 'restored.raw');
      const restore = await coffer(['restore', '-r', repo, 'live:latest', '--to', restored]);
      const nbdcopyQemuNbdS = await nbdcopyThroughQemuNbd(restored, path.join(dir, 'qemu-nbd.sock'));
      return {
        full: { ...full.m, bytesRead: fullJson.bytesRead, bytesStored: fullJson.bytesStored, blockSize },
        incremental: { ...incr.m, bytesRead: incrJson.bytesRead, bytesNew: incrJson.bytesNew, bytesStored: incrJson.bytesStored },
        unchanged: unchanged.m,
        restore: restore.m,
        guestBytesWritten: written,
        dirtyBytes: dirty,
        serveFirstReadS,
        nbdcopyCofferS,
        nbdcopyQemuNbdS,
      };
    } finally {
      await monitor.close();
      await vm.stop();
    }
  } finally {
    if (!cfg.keep) await rm(dir, { recursive: true, force: true });
  }
}

/** The block size the full backup cut the disk into (`coffer snapshots --json`). */
async function diskBlockSize(cfg: BenchConfig, repo: string, env: Record<string, string>): Promise<number> {
  const listed = await run(process.execPath, [cfg.cofferBin, 'snapshots', '-r', repo, '--json'], { env });
  const snapshots = JSON.parse(listed.stdout) as { disks?: { blockSize?: number }[] }[];
  return snapshots[0]?.disks?.[0]?.blockSize ?? 0;
}

/** Half of 1% as scattered 4 KiB writes, half as 4 MiB runs; returns bytes written and dirtied. */
async function guestWrites(monitor: QmpClient, diskBytes: number): Promise<{ written: number; dirty: number }> {
  const granules = new Set<number>();
  let written = 0;
  for (const { offset, length, fill } of onePercentWrites(diskBytes)) {
    await qemuIo(monitor, { device: 'disk0-dev', command: `write -P ${fill} ${offset} ${length}` });
    for (let g = Math.floor(offset / BITMAP_GRANULARITY); g * BITMAP_GRANULARITY < offset + length; g++) granules.add(g);
    written += length;
  }
  return { written, dirty: granules.size * BITMAP_GRANULARITY };
}

/** Seconds from starting `coffer serve` to the first 4 KiB read answered through its export. */
async function firstReadLatency(cfg: BenchConfig, repo: string, socket: string, env: Record<string, string>): Promise<number> {
  const started = process.hrtime.bigint();
  const serve = spawn(process.execPath, [cfg.cofferBin, 'serve', '-r', repo, 'live:latest', '--socket', socket], { env: { ...process.env, ...env }, stdio: 'ignore' });
  try {
    for (;;) {
      try {
        const client = await NbdClient.connect(`nbd+unix:///disk0-dev?socket=${socket}`);
        await client.read(0, 4096);
        await client.close();
        return Number(process.hrtime.bigint() - started) / 1e9;
      } catch {
        if (serve.exitCode !== null || serve.signalCode !== null) throw new Error('coffer serve ended before serving');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  } finally {
    await stopProcess(serve);
  }
}

async function throughCoffer(cfg: BenchConfig, repo: string, socket: string, env: Record<string, string>): Promise<number> {
  const serve = spawn(process.execPath, [cfg.cofferBin, 'serve', '-r', repo, 'live:latest', '--socket', socket], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await new Promise<void>((resolve, reject) => {
      serve.stdout?.on('data', (d: Buffer) => d.toString().includes('nbd') && resolve());
      serve.once('close', () => reject(new Error('coffer serve ended before serving')));
    });
    return (await timed('nbdcopy', [`nbd+unix:///disk0-dev?socket=${socket}`, 'null:'])).m.wallS;
  } finally {
    await stopProcess(serve);
  }
}

/** The targets for the live section. */
export function liveTargets(r: LiveResult): LiveTarget[] {
  const readRatio = r.incremental.bytesRead / Math.max(1, r.dirtyBytes);
  const timeRatio = r.incremental.wallS / Math.max(0.001, r.full.wallS);
  const nbdRatio = r.nbdcopyQemuNbdS / Math.max(0.001, r.nbdcopyCofferS);
  return [
    { name: 'incremental bytes read / dirty bytes (64 KiB granules)', value: readRatio, limit: '<= 1.1', pass: readRatio <= 1.1 },
    { name: 'incremental time / full time', value: timeRatio, limit: '<= 0.05', pass: timeRatio <= 0.05 },
    { name: 'coffer serve to first NBD read (s)', value: r.serveFirstReadS, limit: '<= 1.0', pass: r.serveFirstReadS <= 1 },
    { name: 'nbdcopy speed through coffer / through qemu-nbd', value: nbdRatio, limit: '>= 0.5', pass: nbdRatio >= 0.5 },
  ];
}

export function renderLive(r: LiveResult): string {
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
  const lines = [
    `live VM: full ${r.full.wallS.toFixed(1)} s, ${r.full.cpuS.toFixed(1)} CPU-s, RSS ${(r.full.maxRssKiB / 1024).toFixed(0)} MiB (read ${mib(r.full.bytesRead)} MiB, stored ${mib(r.full.bytesStored)} MiB, ${r.full.blockSize / 1024} KiB blocks); guest wrote ${mib(r.guestBytesWritten)} MiB, dirtying ${mib(r.dirtyBytes)} MiB at 64 KiB granules;`,
    `incremental ${r.incremental.wallS.toFixed(1)} s, ${r.incremental.cpuS.toFixed(1)} CPU-s, RSS ${(r.incremental.maxRssKiB / 1024).toFixed(0)} MiB, read ${mib(r.incremental.bytesRead)} MiB, new ${mib(r.incremental.bytesNew)} MiB, stored ${mib(r.incremental.bytesStored)} MiB; unchanged incremental ${r.unchanged.wallS.toFixed(1)} s, ${r.unchanged.cpuS.toFixed(1)} CPU-s;`,
    `restore ${r.restore.wallS.toFixed(1)} s, ${r.restore.cpuS.toFixed(1)} CPU-s; nbdcopy ${r.nbdcopyCofferS.toFixed(1)} s via coffer serve, ${r.nbdcopyQemuNbdS.toFixed(1)} s via qemu-nbd`,
    'live target                                              | value  | limit   | result',
    '-'.repeat(86),
  ];
  for (const t of liveTargets(r)) lines.push(`${t.name.padEnd(56)} | ${t.value.toFixed(3).padStart(6)} | ${t.limit.padEnd(7)} | ${t.pass ? 'pass' : 'FAIL'}`);
  return lines.join('\n');
}
