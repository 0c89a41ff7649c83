/**
 * `coffer serve` against `qemu-nbd`, read by nbdcopy, in about a minute (issue 5's last serve
 * row, without the live part's QEMU): a copy of the prepared base disk is backed up, ~1% of
 * it rewritten the way bench/live.ts has the guest do it (half as 4 KiB writes at seeded
 * random offsets, half as 4 MiB runs), backed up again (an incremental whose new frames hold
 * blocks from all over the disk, as the live incremental's do), restored to a raw file; then
 * `nbdcopy nbd+unix:///disk?socket=S null:` through `coffer serve` of the incremental and
 * through `qemu-nbd -r` of the restored file, alternating, `BENCH_SERVE_RUNS` times each
 * (default 5), medians printed with serve's CPU seconds.
 *
 * Run: `node dist/bench/serve-speed.js` (needs `bench/work/disks-x0.1`, see README.md;
 * `BENCH_FORMAT=1` for the old layout; `COFFER_BIN=/other/bin/coffer.js` to compare builds; `BENCH_KEEP=1` keeps `bench/work/run/serve-speed`, `BENCH_REUSE=1` keeps it and reuses what
 * a kept run prepared).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, timed } from './exec.js';
import { onePercentWrites } from './one-percent-writes.js';
import { nbdcopyThroughQemuNbd, stopProcess } from './qemu-nbd-copy.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cofferBin = process.env.COFFER_BIN ?? path.join(root, 'bin', 'coffer.js');
const work = path.join(root, 'bench', 'work', 'run', 'serve-speed');
const base = path.join(root, 'bench', 'work', 'disks-x0.1', 'base.raw');
const env = { COFFER_PASSWORD: 'bench-serve-speed' };
const runs = Number(process.env.BENCH_SERVE_RUNS ?? 5);
const format = process.env.BENCH_FORMAT === '1' ? ['--format', '1'] : [];

const coffer = (...args: string[]) => run(process.execPath, [cofferBin, ...args], { env });

async function main(): Promise<void> {
  const reuse = process.env.BENCH_REUSE === '1' && (await sizeOf(path.join(work, 'restored.raw')).catch(() => 0)) > 0;
  if (!reuse) await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const disk = path.join(work, 'disk.raw');
    const repo = path.join(work, 'repo');
    const restored = path.join(work, 'restored.raw');
    let written = 0;
    if (!reuse) {
      await copyFile(base, disk);
      await coffer('init', '-r', repo, ...format);
      await coffer('backup', '-r', repo, '--vm', 'serve', disk);
      written = await rewriteOnePercent(disk);
      await coffer('backup', '-r', repo, '--vm', 'serve', disk);
      await coffer('restore', '-r', repo, 'serve:latest', '--to', restored);
    }
    console.log(`disk ${(await sizeOf(disk)) / 2 ** 20} MiB, ${written} bytes rewritten, format ${format.length > 0 ? 1 : 2}, load ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')}`);
    const coffers: { wallS: number; serveCpuS: number }[] = [];
    const qemus: number[] = [];
    for (let i = 0; i < runs; i++) {
      coffers.push(await throughCoffer(repo, path.join(work, `serve-${i}.sock`)));
      qemus.push(await nbdcopyThroughQemuNbd(restored, path.join(work, `qemu-${i}.sock`)));
      const last = coffers[coffers.length - 1] as { wallS: number; serveCpuS: number };
      console.log(`run ${i + 1}: coffer serve ${last.wallS.toFixed(2)} s (serve CPU ${last.serveCpuS.toFixed(2)} s), qemu-nbd ${(qemus[qemus.length - 1] as number).toFixed(2)} s`);
    }
    const cofferS = median(coffers.map((c) => c.wallS));
    const qemu = median(qemus);
    console.log(`median: coffer serve ${cofferS.toFixed(2)} s (serve CPU ${median(coffers.map((c) => c.serveCpuS)).toFixed(2)} s), qemu-nbd ${qemu.toFixed(2)} s, ratio ${(qemu / cofferS).toFixed(3)}; load ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')}`);
  } finally {
    if (process.env.BENCH_KEEP !== '1' && process.env.BENCH_REUSE !== '1') await rm(work, { recursive: true, force: true });
  }
}

/** bench/live.ts's guest writes on a file: half of 1% as 4 KiB writes, half as 4 MiB runs. */
async function rewriteOnePercent(file: string): Promise<number> {
  const size = await sizeOf(file);
  const handle = await open(file, 'r+');
  let written = 0;
  try {
    for (const { offset, length, fill } of onePercentWrites(size)) {
      await handle.write(Buffer.alloc(length, fill), 0, length, offset);
      written += length;
    }
  } finally {
    await handle.close();
  }
  return written;
}

async function throughCoffer(repo: string, socket: string): Promise<{ wallS: number; serveCpuS: number }> {
  const serve = spawn(process.execPath, [cofferBin, 'serve', '-r', repo, 'serve:latest', '--socket', socket], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const uri = await new Promise<string>((resolve, reject) => {
      serve.stdout?.on('data', (d: Buffer) => {
        const found = /nbd\+unix:\S+/.exec(d.toString());
        if (found !== null) resolve(found[0]);
      });
      serve.once('close', () => reject(new Error('coffer serve ended before serving')));
    });
    const before = await cpuSeconds(serve.pid as number);
    const wallS = (await timed('nbdcopy', [uri, 'null:'])).m.wallS;
    return { wallS, serveCpuS: (await cpuSeconds(serve.pid as number)) - before };
  } finally {
    await stopProcess(serve);
  }
}

/** User + system CPU seconds of a running process (/proc/PID/stat fields 14 and 15, in clock ticks of 1/100 s). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function sizeOf(file: string): Promise<number> {
  const handle = await open(file, 'r');
  try {
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

await main();
