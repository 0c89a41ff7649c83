/**
 * The chain-aware incremental (issue 3's second target): a VM on a qcow2 image is backed
 * up, then runs on a new overlay (`qemu-img create -b`) that takes the guest's writes — the
 * bench's scattered pattern, 2000 random 4 KiB writes and one 16 MiB run, written with
 * qemu-io — and is backed up again. Coffer sees that the parent snapshot read exactly the
 * base image, untouched since, so it reads only what the overlay allocates. Measured: the
 * bytes Coffer read against the bytes the overlay allocates (qemu-img map of the top layer).
 * Target: at most the overlay's allocated bytes (ratio ≤ 1.0).
 *
 * @module
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BenchConfig } from './config.js';
import { run, timed, type Measurement } from './exec.js';
import { Prng } from './random.js';
import { lastJson } from './tool-coffer.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** What the chain part measured. */
export interface ChainResult {
  /** Bytes of guest data the overlay holds (top layer, `qemu-img map` data extents). */
  readonly overlayAllocatedBytes: number;
  /** Bytes the guest wrote into the overlay. */
  readonly guestBytesWritten: number;
  /** Coffer's full backup of the base qcow2. */
  readonly full: Measurement & { bytesRead: number };
  /** Coffer's backup of the overlay chain, parent = the full. */
  readonly incremental: Measurement & { bytesRead: number; method: string };
  /** incremental.bytesRead / overlayAllocatedBytes. */
  readonly ratio: number;
}

interface MapExtent {
  start: number;
  length: number;
  depth: number;
  data: boolean;
  zero?: boolean;
}

/** The scattered pattern's writes as qemu-io commands, inside the first `span` bytes. */
function guestWrites(span: number): { commands: string[]; bytes: number } {
  const prng = new Prng(0xc4a1);
  const commands: string[] = [];
  let bytes = 0;
  for (let i = 0; i < 2000; i += 1) {
    const offset = prng.below(span / (4 * KiB)) * 4 * KiB;
    commands.push('-c', `write -P ${1 + (i % 250)} ${offset} 4k`);
    bytes += 4 * KiB;
  }
  const run16 = prng.below((span - 16 * MiB) / MiB) * MiB;
  commands.push('-c', `write -P 0x5a ${run16} 16M`);
  return { commands, bytes: bytes + 16 * MiB };
}

function backupFigures(stdout: string): { bytesRead: number; method: string } {
  const v = lastJson(stdout) as { bytesRead?: number; disks?: Array<{ changeTracking?: { method?: string } }> };
  if (typeof v.bytesRead !== 'number') throw new Error(`coffer backup --json printed no figures: ${stdout.slice(-300)}`);
  return { bytesRead: v.bytesRead, method: v.disks?.[0]?.changeTracking?.method ?? 'none' };
}

/** Runs the chain part on `baseQcow2` (the formats part's cached qcow2 of the base disk). */
export async function runChain(cfg: BenchConfig, baseQcow2: string, dataSpan: number, log: (line: string) => void): Promise<ChainResult> {
  const dir = path.join(cfg.runDir, 'chain');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const repo = path.join(dir, 'repo');
  const base = path.join(dir, 'base.qcow2');
  const top = path.join(dir, 'top.qcow2');
  const env = { COFFER_PASSWORD: 'bench-chain', XDG_CACHE_HOME: path.join(dir, 'cache') };
  const coffer = (...args: string[]) => timed(process.execPath, [cfg.cofferBin, ...args], { env });
  try {
    await run('cp', ['--reflink=auto', baseQcow2, base]);
    await coffer('init', '-r', repo);
    const full = await coffer('backup', '-r', repo, '--vm', 'chain', '--json', base);
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
    const writes = guestWrites(dataSpan);
    await run('qemu-io', ['-f', 'qcow2', ...writes.commands, top]);
    const map = JSON.parse((await run('qemu-img', ['map', '--output=json', top])).stdout) as MapExtent[];
    const overlayAllocatedBytes = map.filter((e) => e.depth === 0 && e.data).reduce((sum, e) => sum + e.length, 0);
    const incr = await coffer('backup', '-r', repo, '--vm', 'chain', '--json', top);
    const incremental = { ...incr.m, ...backupFigures(incr.stdout) };
    const result: ChainResult = {
      overlayAllocatedBytes,
      guestBytesWritten: writes.bytes,
      full: { ...full.m, bytesRead: backupFigures(full.stdout).bytesRead },
      incremental,
      ratio: incremental.bytesRead / overlayAllocatedBytes,
    };
    log(`chain: overlay allocates ${(overlayAllocatedBytes / MiB).toFixed(1)} MiB, the incremental read ${(incremental.bytesRead / MiB).toFixed(1)} MiB (${incremental.method})`);
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The chain part's lines for the printed report. */
export function renderChain(r: ChainResult): string {
  const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
  const verdict = r.ratio <= 1 ? 'pass' : 'FAIL';
  return [
    'chain-aware incremental of a qcow2 overlay (issue 3)',
    `  guest wrote ${mib(r.guestBytesWritten)}; the overlay allocates ${mib(r.overlayAllocatedBytes)}`,
    `  full of the base: read ${mib(r.full.bytesRead)} in ${r.full.wallS.toFixed(1)} s; incremental of the overlay: read ${mib(r.incremental.bytesRead)} in ${r.incremental.wallS.toFixed(1)} s (${r.incremental.method})`,
    `  bytes read / overlay allocated: ${r.ratio.toFixed(3)}  target <= 1.0  ${verdict}`,
  ].join('\n');
}
