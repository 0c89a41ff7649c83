import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { CofferError } from '../errors/index.js';
import { detectFormat } from './detect.js';
import type { BackingOpener, DiskFormat, DiskImage, OpenImageOptions } from './disk-image.js';
import { ImageFile } from './image-file.js';
import { RawImage } from './raw-image.js';

/** Longest backing chain followed; deeper is treated as a damaged or hostile image. */
export const MAX_CHAIN_DEPTH = 64;

/** A reader of one format: parses `file` and returns it as a disk image. */
type FormatReader = (file: ImageFile, openBacking: BackingOpener, options: OpenImageOptions) => Promise<DiskImage>;

/**
 * Each reader is loaded when an image of its format is opened: a command pays only for the
 * formats it reads (loading all four readers cost ~30 ms of CPU at each start, 2026-11-26).
 */
const READERS: Partial<Record<DiskFormat, () => Promise<FormatReader>>> = {
  qcow2: async () => (await import('./qcow2/qcow2-image.js')).openQcow2,
  vpc: async () => (await import('./vhd/vhd-image.js')).openVhd,
  vmdk: async () => (await import('./vmdk/vmdk-image.js')).openVmdk,
  vhdx: async () => (await import('./vhdx/vhdx-image.js')).openVhdx,
};

/**
 * Opens any supported disk image by its content (see detect.ts), with its backing chain.
 * A chain deeper than {@link MAX_CHAIN_DEPTH} or one that loops back on itself is
 * `E_IMAGE_INVALID`; a format Coffer does not read yet is `E_UNSUPPORTED_FORMAT`.
 */
export async function openDiskImage(path: string, options: OpenImageOptions = {}): Promise<DiskImage> {
  return openInChain(path, [], options);
}

async function openInChain(path: string, chain: readonly string[], options: OpenImageOptions): Promise<DiskImage> {
  const file = await ImageFile.open(path);
  let real: string;
  try {
    real = await realpath(path);
    if (chain.includes(real)) throw file.invalid(`its backing chain loops back to ${real}`);
    if (chain.length >= MAX_CHAIN_DEPTH) throw file.invalid(`its backing chain is deeper than ${MAX_CHAIN_DEPTH} images`);
    const format = await detectFormat(file);
    if (options.snapshot !== undefined && format !== 'qcow2') throw file.unsupported(`an internal snapshot of a ${format} image (only qcow2 has them)`);
    if (format === 'raw') {
      await file.close();
      return RawImage.open(path);
    }
    const loadReader = READERS[format];
    if (loadReader === undefined) throw file.unsupported(`the ${format} format`);
    const reader = await loadReader();
    const openBacking: BackingOpener = (reference, from) => openInChain(resolveReference(reference, from), [...chain, real], {});
    return await reader(file, openBacking, options);
  } catch (error) {
    await file.close();
    throw error;
  }
}

/** A backing file name as an image stores it: absolute, or relative to the image's folder. */
function resolveReference(reference: string, from: string): string {
  if (reference.includes('\u0000') || reference.length === 0) {
    throw new CofferError('E_IMAGE_INVALID', `${from}: backing file name ${JSON.stringify(reference)} is not a path`, { subject: { path: from } });
  }
  return isAbsolute(reference) ? reference : resolve(dirname(from), reference);
}
