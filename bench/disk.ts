/**
 * The base test disk: a sparse raw file with a GPT, one ext4 partition filled by
 * `mke2fs -d` from real system files, and the rest never written. Built once per scale
 * and cached in the work directory with a JSON description beside it; a missing
 * description means an unfinished build, and the whole disk directory is rebuilt.
 *
 * @module
 */
import { mkdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchConfig } from './config.js';
import { checkFs, readGeometry } from './ext4.js';
import { run } from './exec.js';
import { stageFiles, type StagedFile } from './stage.js';

/** Where things are on the base disk; shared by every disk derived from it. */
export interface DiskLayout {
  /** Virtual size of the disk in bytes. */
  readonly diskBytes: number;
  /** Byte offset of the ext4 partition. */
  readonly partOffset: number;
  /** Byte size of the ext4 partition. */
  readonly partBytes: number;
  /** ext4 block size (forced to 4096 at every scale). */
  readonly blockSize: number;
  /** Bytes and count of files copied in. */
  readonly filesBytes: number;
  readonly fileCount: number;
  /** Files of 1 MiB or more, the candidates for the derived versions' changes. */
  readonly large: readonly StagedFile[];
}

/** A disk image on the local filesystem with its layout. */
export interface BaseDisk {
  readonly path: string;
  readonly layout: DiskLayout;
}

const SECTOR = 512;
const FIRST_SECTOR = 2048; // 1 MiB alignment, as every partitioning tool does today

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/**
 * Returns the cached base disk for this scale, building it first when missing
 * (a few minutes at scale 1: copying ~2.25 GB of files dominates).
 *
 * @param log receives one line per build step
 */
export async function ensureBaseDisk(cfg: BenchConfig, log: (line: string) => void): Promise<BaseDisk> {
  const image = path.join(cfg.diskDir, 'base.raw');
  const meta = path.join(cfg.diskDir, 'base.json');
  if ((await exists(image)) && (await exists(meta))) {
    return { path: image, layout: JSON.parse(await readFile(meta, 'utf8')) as DiskLayout };
  }
  await rm(cfg.diskDir, { recursive: true, force: true });
  await mkdir(cfg.diskDir, { recursive: true });

  const staging = path.join(cfg.diskDir, 'staging');
  log(`staging ${(cfg.filesBudget / 2 ** 30).toFixed(2)} GiB of files from ${cfg.sourceTrees.join(' ')}`);
  const staged = await stageFiles(cfg.sourceTrees, staging, cfg.filesBudget);
  log(`staged ${staged.files} files, ${(staged.bytes / 2 ** 30).toFixed(2)} GiB`);

  const tmp = `${image}.tmp`;
  await writeFile(tmp, '');
  await truncate(tmp, cfg.diskBytes);
  const sectors = cfg.partitionBytes / SECTOR;
  await run('sfdisk', ['-q', tmp], {
    input: `label: gpt\nstart=${FIRST_SECTOR}, size=${sectors}, type=linux, name=root\n`,
  });
  const partOffset = await partitionOffset(tmp);
  log(`mke2fs: ${cfg.partitionBytes / 1024 / 1024} MiB ext4 at byte ${partOffset}`);
  await run('mke2fs', [
    '-q', '-F', '-t', 'ext4', '-b', '4096', '-L', 'bench-root',
    '-E', `offset=${partOffset},nodiscard`,
    '-d', staging, tmp, `${cfg.partitionBytes / 1024}k`,
  ]);
  await checkFs(tmp, partOffset);
  const geometry = await readGeometry(tmp, partOffset);
  await rm(staging, { recursive: true, force: true });

  const layout: DiskLayout = {
    diskBytes: cfg.diskBytes,
    partOffset,
    partBytes: cfg.partitionBytes,
    blockSize: geometry.blockSize,
    filesBytes: staged.bytes,
    fileCount: staged.files,
    large: staged.large,
  };
  await rename(tmp, image);
  await writeFile(meta, JSON.stringify(layout, null, 1));
  return { path: image, layout };
}

/** Reads the first partition's byte offset back from the table with `sfdisk -J`. */
async function partitionOffset(image: string): Promise<number> {
  const { stdout } = await run('sfdisk', ['-J', image]);
  const table = JSON.parse(stdout) as { partitiontable?: { partitions?: { start?: unknown }[] } };
  const start = table.partitiontable?.partitions?.[0]?.start;
  if (typeof start !== 'number') throw new Error(`sfdisk -J ${image}: no first partition`);
  return start * SECTOR;
}
