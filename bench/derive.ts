/**
 * The set of disks one run backs up: the base, its three derived versions and the sparse
 * big disk for the memory check. Each is a sparse copy of the base with one change
 * applied, built once and cached beside the base (`NAME.raw` plus `NAME.json` describing
 * the change; a missing JSON means an unfinished build).
 *
 * @module
 */
import { readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchConfig } from './config.js';
import { clusterChanges, fillFreeSpace, scatterWrites, type ChangeSummary } from './changes.js';
import { ensureBaseDisk, type DiskLayout } from './disk.js';
import { checkFs } from './ext4.js';
import { run } from './exec.js';

/** Names of the derived versions. */
export type Variant = 'scattered' | 'clustered' | 'clone';

/** Every disk image of a run, by role. */
export interface DiskSet {
  readonly base: string;
  readonly scattered: string;
  readonly clustered: string;
  readonly clone: string;
  /** The base's content in a sparse disk of `bigDiskBytes` (for the peak RSS check). */
  readonly big: string;
  readonly layout: DiskLayout;
  /** What each derived version changed. */
  readonly changes: Readonly<Record<Variant, ChangeSummary>>;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Copies a disk image keeping its holes. */
async function copySparse(from: string, to: string): Promise<void> {
  await run('cp', ['--sparse=always', from, to]);
}

/**
 * Returns all disks for this scale, building what is missing.
 *
 * @param log receives one line per build step
 */
export async function ensureDisks(cfg: BenchConfig, log: (line: string) => void): Promise<DiskSet> {
  const base = await ensureBaseDisk(cfg, log);
  const { layout } = base;
  const make = async (name: Variant, apply: (image: string) => Promise<ChangeSummary>): Promise<ChangeSummary> => {
    const image = path.join(cfg.diskDir, `${name}.raw`);
    const meta = path.join(cfg.diskDir, `${name}.json`);
    if ((await exists(image)) && (await exists(meta))) {
      return JSON.parse(await readFile(meta, 'utf8')) as ChangeSummary;
    }
    log(`deriving ${name}`);
    const tmp = `${image}.tmp`;
    await rm(tmp, { force: true });
    await copySparse(base.path, tmp);
    const summary = await apply(tmp);
    await checkFs(tmp, layout.partOffset);
    await rename(tmp, image);
    await writeFile(meta, JSON.stringify(summary, null, 1));
    log(`  ${summary.description}`);
    return summary;
  };
  const changes: Record<Variant, ChangeSummary> = {
    scattered: await make('scattered', (img) =>
      scatterWrites(img, layout, { count: cfg.scatteredWrites, contiguousBytes: cfg.contiguousBytes }),
    ),
    clustered: await make('clustered', (img) => clusterChanges(img, layout)),
    clone: await make('clone', (img) => fillFreeSpace(img, layout, cfg.cloneBytes)),
  };

  const big = path.join(cfg.diskDir, 'big.raw');
  if (!(await exists(big))) {
    log(`making the ${cfg.bigDiskBytes / 2 ** 30} GiB sparse disk`);
    await copySparse(base.path, `${big}.tmp`);
    await truncate(`${big}.tmp`, cfg.bigDiskBytes);
    await rename(`${big}.tmp`, big);
  }
  const p = (n: string): string => path.join(cfg.diskDir, `${n}.raw`);
  return { base: base.path, scattered: p('scattered'), clustered: p('clustered'), clone: p('clone'), big, layout, changes };
}
