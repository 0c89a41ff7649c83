import type { Writable } from 'node:stream';
import { CofferError } from '../errors/index.js';
import { openQcow2Target } from './qcow2/qcow2-writer.js';
import { openRawTarget, type DiskTarget } from './raw-target.js';

/** Formats a restore can write. */
export const TARGET_FORMATS = ['raw', 'qcow2'] as const;
export type TargetFormat = (typeof TARGET_FORMATS)[number];

/**
 * Opens where a restored disk goes, in the format asked: `raw` (a sparse file, a block
 * device, or `-` for standard output) or `qcow2` (a sparse image file).
 */
export async function openDiskTarget(
  path: string,
  size: number,
  options: { format: TargetFormat; overwrite: boolean; stdout?: Writable },
): Promise<DiskTarget> {
  if (options.format === 'raw') return openRawTarget(path, size, options);
  if (path === '-') throw new CofferError('E_USAGE', `${options.format} images are not written to standard output; give a file with --to`);
  return openQcow2Target(path, size, options);
}
