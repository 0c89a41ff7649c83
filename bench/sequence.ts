/**
 * One tool's pass through the benchmark, in a fresh repository: init, full backup of the
 * base, the scattered and clustered incrementals of the same VM, the clone as another VM,
 * a restore of the VM's newest backup (checked byte for byte against its source), and a
 * verify that reads all data. Also Coffer's memory check on the big sparse disk.
 *
 * Every tool backs up the same path for a VM (`<run>/vms/<vm>/disk.raw`, a hard link to the
 * version being backed up) so that snapshots of one VM look like one disk changing over
 * time, as they would on a hypervisor. Before each measured step the input (image or
 * repository) is read once and `sync` flushes earlier writes, so every tool starts with
 * the same warm page cache and no write-back pending.
 *
 * @module
 */
import { link, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BenchConfig } from './config.js';
import type { DiskSet } from './derive.js';
import type { Measurement } from './exec.js';
import { sameContent, settle, treeSize, warm, type TreeSize } from './measure.js';
import type { StepName, StepResult } from './results.js';
import type { BackupTool } from './tools.js';

/** Where the run keeps a VM's current disk, the same path for every tool. */
export function vmDiskPath(cfg: BenchConfig, vm: string): string {
  return path.join(cfg.runDir, 'vms', vm, 'disk.raw');
}

/** Points the VM's disk path at `image` (a hard link: no copy, same bytes). */
async function present(cfg: BenchConfig, vm: string, image: string): Promise<string> {
  const p = vmDiskPath(cfg, vm);
  await mkdir(path.dirname(p), { recursive: true });
  await rm(p, { force: true });
  await link(image, p);
  return p;
}

function diff(after: TreeSize, before: TreeSize): TreeSize {
  return { apparent: after.apparent - before.apparent, allocated: after.allocated - before.allocated };
}

function measured(tool: BackupTool, step: StepName, m: Measurement, extra: Partial<StepResult> = {}): StepResult {
  return { tool: tool.name, step, wallS: m.wallS, cpuS: m.cpuS, maxRssKiB: m.maxRssKiB, ...extra };
}

function failed(tool: BackupTool, step: StepName, err: unknown): StepResult {
  const error = err instanceof Error ? err.message : String(err);
  return { tool: tool.name, step, wallS: 0, cpuS: 0, maxRssKiB: 0, error };
}

/**
 * Runs every step for one tool. A failing step is recorded with its error and ends the
 * tool's sequence (later steps depend on it).
 *
 * @param log receives one line per step
 */
export async function runSequence(
  cfg: BenchConfig,
  opts: { tool: BackupTool; repo: string; disks: DiskSet; log: (line: string) => void },
): Promise<StepResult[]> {
  const { tool, repo, disks, log } = opts;
  const results: StepResult[] = [];
  const backups: Array<{ step: StepName; vm: string; image: string }> = [
    { step: 'full', vm: 'vm1', image: disks.base },
    { step: 'incr-scattered', vm: 'vm1', image: disks.scattered },
    { step: 'incr-clustered', vm: 'vm1', image: disks.clustered },
    { step: 'clone', vm: 'vm2', image: disks.clone },
  ];
  const done = (r: StepResult): void => {
    results.push(r);
    const what = r.error ?? `${r.wallS.toFixed(1)} s wall, ${r.cpuS.toFixed(1)} s cpu, ${(r.maxRssKiB / 1024).toFixed(0)} MiB RSS`;
    const added = r.added ? `, +${(r.added.apparent / 2 ** 20).toFixed(1)} MiB` : '';
    log(`  ${tool.name} ${r.step}: ${what}${added}`);
  };
  let step: StepName = 'init';
  try {
    await mkdir(path.dirname(repo), { recursive: true });
    const m = await tool.init();
    const size = await treeSize(repo);
    done(measured(tool, step, m, { repo: size, added: size }));

    for (const b of backups) {
      step = b.step;
      const disk = await present(cfg, b.vm, b.image);
      await warm([disk]);
      await settle();
      const before = await treeSize(repo);
      const out = await tool.backup(b.vm, disk, b.step);
      const after = await treeSize(repo);
      done(measured(tool, step, out.m, { repo: after, added: diff(after, before), reported: out.reported }));
    }

    step = 'restore';
    const dir = path.join(cfg.runDir, tool.name, 'restore');
    await mkdir(dir, { recursive: true });
    await warm([repo]);
    await settle();
    const restored = await tool.restore('vm1', vmDiskPath(cfg, 'vm1'), dir);
    const st = await stat(restored.file);
    const same = await sameContent(restored.file, disks.clustered);
    await rm(dir, { recursive: true, force: true });
    if (!same) throw new Error(`restored image ${restored.file} differs from the clustered disk`);
    done(measured(tool, step, restored.m, { note: `identical; ${(st.blocks * 512 / 2 ** 20).toFixed(0)} MiB allocated` }));

    step = 'verify';
    await warm([repo]);
    await settle();
    done(measured(tool, step, await tool.verify()));
  } catch (err) {
    done(failed(tool, step, err));
  }
  return results;
}

/**
 * Coffer's memory check: a full backup of the base's content in a sparse disk of
 * `bigDiskBytes` (16 GiB at scale 1) into a fresh repository; its peak RSS is compared
 * with the 4 GiB full's.
 */
export async function runBigDisk(
  cfg: BenchConfig,
  opts: { tool: BackupTool; repo: string; disks: DiskSet; log: (line: string) => void },
): Promise<StepResult> {
  const { tool, repo, disks, log } = opts;
  try {
    await mkdir(path.dirname(repo), { recursive: true });
    await tool.init();
    const disk = await present(cfg, 'big', disks.big);
    await warm([disk]);
    await settle();
    const out = await tool.backup('big', disk, 'full');
    const size = await treeSize(repo);
    const r = measured(tool, 'full-16g', out.m, { repo: size, added: size, reported: out.reported });
    log(`  ${tool.name} full-16g: ${r.wallS.toFixed(1)} s wall, ${(r.maxRssKiB / 1024).toFixed(0)} MiB RSS`);
    return r;
  } catch (err) {
    log(`  ${tool.name} full-16g: ${String(err)}`);
    return failed(tool, 'full-16g', err);
  }
}
