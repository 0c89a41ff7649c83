/**
 * Disk formats, Coffer against qemu-img on the same images in one run: reading every
 * format Coffer reads (image → sparse raw file) and writing every format Coffer writes
 * (raw disk → image), each with `coffer disk convert` and `qemu-img convert`. Outputs go to
 * a tmpfs (/dev/shm) when there is one, so the disk under test is the input, not the output.
 * Target (issue 3): ratio Coffer/qemu-img ≤ 1.0 for every row.
 *
 * @module
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BenchConfig } from './config.js';
import { run, timed, type Measurement } from './exec.js';

/** One row: one format, one direction, both tools. */
export interface FormatResult {
  readonly format: string;
  readonly direction: 'read' | 'write';
  readonly coffer: Measurement | { error: string };
  readonly qemu: Measurement;
  /** Coffer wall time / qemu-img wall time. */
  readonly ratio: number | null;
}

/** Input images built from the base disk, by qemu-img (cached with the disks). */
const INPUTS: { name: string; format: string; options: string[] }[] = [
  { name: 'qcow2', format: 'qcow2', options: [] },
  { name: 'qcow2-compressed', format: 'qcow2', options: ['-c'] },
  { name: 'qcow2-zstd', format: 'qcow2', options: ['-c', '-o', 'compression_type=zstd'] },
  { name: 'vmdk-sparse', format: 'vmdk', options: ['-o', 'subformat=monolithicSparse'] },
  { name: 'vmdk-stream', format: 'vmdk', options: ['-o', 'subformat=streamOptimized'] },
  { name: 'vhd-dynamic', format: 'vpc', options: ['-o', 'subformat=dynamic,force_size=on'] },
  { name: 'vhdx', format: 'vhdx', options: [] },
];

/** Formats written: Coffer's name and qemu-img's for the same thing. */
const OUTPUTS: { coffer: string; qemu: string; options: string[] }[] = [
  { coffer: 'qcow2', qemu: 'qcow2', options: [] },
  { coffer: 'vhd', qemu: 'vpc', options: ['-o', 'subformat=dynamic,force_size=on'] },
  { coffer: 'vmdk', qemu: 'vmdk', options: ['-o', 'subformat=streamOptimized'] },
  { coffer: 'vmdk-sparse', qemu: 'vmdk', options: ['-o', 'subformat=monolithicSparse'] },
  { coffer: 'vhdx', qemu: 'vhdx', options: [] },
];

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** Runs the format comparison on `base` (a raw disk image). */
export async function runFormats(cfg: BenchConfig, base: string, log: (line: string) => void): Promise<FormatResult[]> {
  const inputs = path.join(cfg.diskDir, 'formats');
  await mkdir(inputs, { recursive: true });
  const scratch = (await exists('/dev/shm')) ? path.join('/dev/shm', `coffer-bench-${process.pid}`) : path.join(cfg.runDir, 'formats');
  await mkdir(scratch, { recursive: true });
  const coffer = (args: string[]) => timed(process.execPath, [cfg.cofferBin, 'disk', 'convert', ...args], { allowFail: true });
  const results: FormatResult[] = [];
  try {
    for (const input of INPUTS) {
      const image = path.join(inputs, input.name);
      if (!(await exists(image))) {
        log(`formats: building ${input.name}`);
        await run('qemu-img', ['convert', '-f', 'raw', '-O', input.format, ...input.options, base, `${image}.tmp`]);
        await run('mv', [`${image}.tmp`, image]);
      }
      const out = path.join(scratch, 'out.raw');
      await warm(image);
      const ours = await coffer([image, out, '--format', 'raw', '--overwrite']);
      await rm(out, { force: true });
      const theirs = await timed('qemu-img', ['convert', '-f', input.format, '-O', 'raw', image, out]);
      await rm(out, { force: true });
      results.push(row(input.name, 'read', ours, theirs.m));
      log(`formats: read ${input.name}: coffer ${describe(ours)}, qemu-img ${theirs.m.wallS.toFixed(1)} s`);
    }
    await warm(base);
    for (const output of OUTPUTS) {
      const out = path.join(scratch, `out.${output.coffer}`);
      const ours = await coffer([base, out, '--format', output.coffer, '--overwrite']);
      await rm(out, { force: true });
      const theirs = await timed('qemu-img', ['convert', '-f', 'raw', '-O', output.qemu, ...output.options, base, out]);
      await rm(out, { force: true });
      results.push(row(output.coffer, 'write', ours, theirs.m));
      log(`formats: write ${output.coffer}: coffer ${describe(ours)}, qemu-img ${theirs.m.wallS.toFixed(1)} s`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return results;
}

/** Reads a file once so both tools find it in the page cache. */
async function warm(file: string): Promise<void> {
  await run('sh', ['-c', 'cat "$1" > /dev/null', 'warm', file]);
}

function row(format: string, direction: 'read' | 'write', ours: { code: number; stderr: string; m: Measurement }, qemu: Measurement): FormatResult {
  if (ours.code !== 0) return { format, direction, coffer: { error: ours.stderr.trim().split('\n').pop() ?? `exit ${ours.code}` }, qemu, ratio: null };
  return { format, direction, coffer: ours.m, qemu, ratio: qemu.wallS > 0 ? ours.m.wallS / qemu.wallS : null };
}

function describe(ours: { code: number; stderr: string; m: Measurement }): string {
  return ours.code === 0 ? `${ours.m.wallS.toFixed(1)} s` : `failed (${ours.stderr.trim().split('\n').pop()})`;
}

/** The table printed after the backup tables. */
export function renderFormats(results: readonly FormatResult[]): string {
  const lines = ['format            | dir   | coffer s | qemu-img s | ratio | target | result', '-'.repeat(78)];
  for (const r of results) {
    const ours = 'error' in r.coffer ? `error: ${r.coffer.error}` : r.coffer.wallS.toFixed(1);
    const verdict = r.ratio === null ? 'n/a' : r.ratio <= 1 ? 'pass' : 'FAIL';
    lines.push(`${r.format.padEnd(17)} | ${r.direction.padEnd(5)} | ${ours.padStart(8)} | ${r.qemu.wallS.toFixed(1).padStart(10)} | ${r.ratio === null ? '   - ' : r.ratio.toFixed(2).padStart(5)} |  <=1.0 | ${verdict}`);
  }
  return lines.join('\n');
}
