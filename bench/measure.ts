/**
 * Measurements around the tools' runs: repository size (`du`), warming the page cache and
 * flushing earlier writes so every tool starts from the same state, and checking a restored
 * image byte for byte.
 *
 * The page cache cannot be dropped reliably here (no root over the host), so instead every
 * step runs warm: the input image or repository is read once just before the measured
 * command, for every tool alike, and `sync` runs.
 *
 * @module
 */
import { run } from './exec.js';

/** Size of a directory tree, as `du` counts it. */
export interface TreeSize {
  /** Sum of file sizes (`du -sb`). */
  readonly apparent: number;
  /** Bytes allocated on disk (`du -sB1`); below `apparent` for sparse files. */
  readonly allocated: number;
}

async function du(args: readonly string[], dir: string): Promise<number> {
  const { stdout } = await run('du', [...args, dir]);
  const n = Number(stdout.split('\t')[0]);
  if (!Number.isFinite(n)) throw new Error(`du ${dir}: cannot parse "${stdout}"`);
  return n;
}

/** Measures a directory tree (a repository) both ways. */
export async function treeSize(dir: string): Promise<TreeSize> {
  return { apparent: await du(['-sb'], dir), allocated: await du(['-sB1'], dir) };
}

/** Reads every file under each path (a file or a directory) once, into the page cache. */
export async function warm(paths: readonly string[]): Promise<void> {
  for (const p of paths) {
    await run('sh', ['-c', 'find "$1" -type f -exec cat {} + > /dev/null', 'warm', p]);
  }
}

/**
 * Flushes dirty pages (`sync`) so that writes of earlier steps (a restore, the previous
 * backup's repository) are not written back during the next measurement.
 */
export async function settle(): Promise<void> {
  await run('sync', []);
}

/** True when two files have the same bytes (`cmp -s`). */
export async function sameContent(a: string, b: string): Promise<boolean> {
  return (await run('cmp', ['-s', a, b], { allowFail: true })).code === 0;
}
