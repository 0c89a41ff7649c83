/**
 * The live incremental alone (issue #5's incremental/full row), repeated so builds can be
 * compared back to back: the prepared base disk in a running QEMU (TCG, no guest OS), one full
 * `coffer backup --qemu`, then rounds of "the guest rewrites ~1% of the disk the way
 * bench/live.ts has it do (bench/one-percent-writes.ts, each round with other fill bytes so
 * its blocks are new), one incremental", the incrementals taking turns between the Coffer
 * scripts named in `COFFER_BINS` (comma separated; default this checkout's bin/coffer.js).
 * Then one incremental with nothing written per script. Prints each run's wall and CPU seconds
 * (user+sys, GNU time) and the medians per script, with the load average.
 *
 * Run: `node dist/bench/live-incremental.js` (needs `bench/work/disks-x1` or, with
 * `BENCH_SCALE=0.1`, `disks-x0.1`; see README.md). `BENCH_ROUNDS` (default 3) rounds per
 * script; `BENCH_CPU_PROF=DIR` runs every incremental with `--cpu-prof --cpu-prof-dir DIR/N`.
 *
 * @module
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, timed, type Measurement } from './exec.js';
import { onePercentWrites } from './one-percent-writes.js';
import { qemuIo, QmpClient } from '../src/qmp/index.js';
import { startTestVm } from '../src/testing/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bins = (process.env.COFFER_BINS ?? path.join(root, 'bin', 'coffer.js')).split(',');
const scale = process.env.BENCH_SCALE ?? '1';
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const profileDir = process.env.BENCH_CPU_PROF;
const work = path.join(root, 'bench', 'work', 'run', 'live-incremental');
const env = { COFFER_PASSWORD: 'bench-live-incremental' };

interface Run extends Measurement {
  bin: string;
  bytesRead: number;
  bytesNew: number;
}

async function main(): Promise<void> {
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const base = path.join(root, 'bench', 'work', `disks-x${scale}`, 'base.raw');
  const diskBytes = (await stat(base)).size;
  const qcow2 = path.join(work, 'vm.qcow2');
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', base, qcow2]);
  const monitorSocket = path.join(work, 'bench.qmp');
  const vm = await startTestVm({ disks: [{ name: 'disk0', size: diskBytes, from: qcow2 }], memoryMiB: 128, extraArgs: ['-qmp', `unix:${monitorSocket},server=on,wait=off`] });
  await rm(qcow2, { force: true });
  const monitor = await QmpClient.connect({ path: monitorSocket });
  const repo = path.join(work, 'repo');
  let n = 0;
  const backup = async (bin: string): Promise<Run> => {
    const prof = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', path.join(profileDir, String(++n))];
    const { m, stdout } = await timed(process.execPath, [...prof, bin, 'backup', '-r', repo, '--vm', 'live', '--qemu', vm.qmpSocket, '--json'], { env });
    const figures = JSON.parse(stdout) as { bytesRead: number; bytesNew: number };
    return { ...m, bin, bytesRead: figures.bytesRead, bytesNew: figures.bytesNew };
  };
  const line = async (label: string, r: Run): Promise<void> =>
    console.log(`${label} ${path.relative(root, r.bin)}: ${r.wallS.toFixed(2)} s, ${r.cpuS.toFixed(2)} CPU-s, RSS ${(r.maxRssKiB / 1024).toFixed(0)} MiB, read ${(r.bytesRead / 2 ** 20).toFixed(0)} MiB, new ${(r.bytesNew / 2 ** 20).toFixed(0)} MiB  (load ${await load()})`);
  try {
    await run(process.execPath, [bins[0] as string, 'init', '-r', repo], { env });
    const full = await backup(bins[0] as string);
    await line('full', full);
    const incrementals: Run[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const bin of bins) {
        await guestWrites(monitor, diskBytes, incrementals.length + 1);
        const r = await backup(bin);
        incrementals.push(r);
        await line(`incremental ${incrementals.length}`, r);
      }
    }
    const unchanged: Run[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const bin of bins) {
        const r = await backup(bin);
        unchanged.push(r);
        await line('unchanged', r);
      }
    }
    for (const bin of bins) {
      const mine = incrementals.filter((r) => r.bin === bin);
      const still = unchanged.filter((r) => r.bin === bin);
      console.log(
        `median ${path.relative(root, bin)}: incremental ${median(mine.map((r) => r.wallS)).toFixed(2)} s / ${median(mine.map((r) => r.cpuS)).toFixed(2)} CPU-s` +
          ` (ratio to the full ${(median(mine.map((r) => r.wallS)) / full.wallS).toFixed(3)}), unchanged ${median(still.map((r) => r.wallS)).toFixed(2)} s / ${median(still.map((r) => r.cpuS)).toFixed(2)} CPU-s`,
      );
    }
  } finally {
    await monitor.close();
    await vm.stop();
    if (process.env.BENCH_KEEP !== '1') await rm(work, { recursive: true, force: true });
  }
}

/**
 * The 1% rewrite, moved and refilled for `round` so that its blocks are new as the first
 * round's are (same fills at the same places would all be found stored): 4 KiB writes move
 * by 17 pages a round (another place in their 64 KiB block), 4 MiB runs by three runs.
 */
async function guestWrites(monitor: QmpClient, diskBytes: number, round: number): Promise<void> {
  for (const { offset, length, fill } of onePercentWrites(diskBytes)) {
    const moved = (offset + round * (length === 4096 ? 17 * 4096 : 3 * length)) % diskBytes;
    await qemuIo(monitor, { device: 'disk0-dev', command: `write -P ${1 + ((fill + round * 37) % 250)} ${moved} ${length}` });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function load(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
}

await main();
