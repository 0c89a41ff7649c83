import type { Writable } from 'node:stream';
import { CofferError } from '../errors/index.js';
import { openRawTarget, type DiskTarget } from './raw-target.js';

/**
 * Formats a restore can write: `raw`, `qcow2`, `vhd` (dynamic VHD, what Hyper-V and Azure
 * tools take), `vhd-fixed`, `vhdx` (dynamic VHDX, what Hyper-V takes), `vmdk` (streamOptimized,
 * what VMware imports) and `vmdk-sparse` (monolithicSparse, what VMware Workstation runs).
 */
export const TARGET_FORMATS = ['raw', 'qcow2', 'vhd', 'vhd-fixed', 'vhdx', 'vmdk', 'vmdk-sparse'] as const;
export type TargetFormat = (typeof TARGET_FORMATS)[number];

/** The file name extension of each format's images (`vhd-fixed` is still a `.vhd`). */
export const TARGET_EXTENSIONS: Readonly<Record<TargetFormat, string>> = {
  raw: 'raw',
  qcow2: 'qcow2',
  vhd: 'vhd',
  'vhd-fixed': 'vhd',
  vhdx: 'vhdx',
  vmdk: 'vmdk',
  'vmdk-sparse': 'vmdk',
};

/**
 * Opens where a restored disk goes, in the format asked: `raw` (a sparse file, a block
 * device, or `-` for standard output) or an image file (sparse where the format allows).
 * Each format's writer is loaded when it is asked for (see open-image.ts).
 */
export async function openDiskTarget(
  path: string,
  size: number,
  options: { format: TargetFormat; overwrite: boolean; stdout?: Writable },
): Promise<DiskTarget> {
  if (options.format === 'raw') return openRawTarget(path, size, options);
  if (path === '-') throw new CofferError('E_USAGE', `${options.format} images are not written to standard output; give a file`);
  const { overwrite } = options;
  switch (options.format) {
    case 'qcow2':
      return (await import('./qcow2/qcow2-writer.js')).openQcow2Target(path, size, { overwrite });
    case 'vhd':
      return (await import('./vhd/vhd-writer.js')).openVhdTarget(path, size, { overwrite, subformat: 'dynamic' });
    case 'vhd-fixed':
      return (await import('./vhd/vhd-writer.js')).openVhdTarget(path, size, { overwrite, subformat: 'fixed' });
    case 'vhdx':
      return (await import('./vhdx/vhdx-writer.js')).openVhdxTarget(path, size, { overwrite });
    case 'vmdk':
      return (await import('./vmdk/vmdk-writer.js')).openVmdkTarget(path, size, { overwrite, subformat: 'streamOptimized' });
    case 'vmdk-sparse':
      return (await import('./vmdk/vmdk-writer.js')).openVmdkTarget(path, size, { overwrite, subformat: 'monolithicSparse' });
  }
}
