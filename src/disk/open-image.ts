import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { CofferError, isCofferError } from '../errors/index.js';
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
 * Opens any supported disk image by its content (see detect.ts), or as `options.format`, with
 * its backing chain. A chain deeper than {@link MAX_CHAIN_DEPTH} or one that loops back on
 * itself is `E_IMAGE_INVALID`; a format Coffer does not read yet is `E_UNSUPPORTED_FORMAT`; a
 * backing file that cannot be opened is `E_SOURCE_UNREADABLE` naming the image that needs it.
 */
export async function openDiskImage(path: string, options: OpenImageOptions = {}): Promise<DiskImage> {
  return openInChain(path, [], options, null);
}

async function openInChain(path: string, chain: readonly string[], options: OpenImageOptions, backingOf: string | null): Promise<DiskImage> {
  const file = await openImageFile(path, backingOf);
  let real: string;
  try {
    real = await realpath(path);
    if (chain.includes(real)) throw file.invalid(`its backing chain loops back to ${real}`);
    if (chain.length >= MAX_CHAIN_DEPTH) throw file.invalid(`its backing chain is deeper than ${MAX_CHAIN_DEPTH} images`);
    const format = await formatOf(file, options.format, backingOf);
    if (options.snapshot !== undefined && format !== 'qcow2') throw file.unsupported(`an internal snapshot of a ${format} image (only qcow2 has them)`);
    if (format === 'raw') {
      await file.close();
      return RawImage.open(path);
    }
    const loadReader = READERS[format];
    if (loadReader === undefined) throw file.unsupported(`the ${format} format`);
    const reader = await loadReader();
    const openBacking: BackingOpener = (reference, from, backingFormat) =>
      openInChain(resolveReference(reference, from), [...chain, real], backingFormat === undefined ? {} : { format: backingFormat }, from);
    return await reader(file, openBacking, options);
  } catch (error) {
    await file.close();
    throw error;
  }
}

/** The image's file; a backing file that cannot be opened says which image needs it. */
async function openImageFile(path: string, backingOf: string | null): Promise<ImageFile> {
  try {
    return await ImageFile.open(path);
  } catch (error) {
    if (backingOf === null || !isCofferError(error, 'E_SOURCE_UNREADABLE')) throw error;
    throw new CofferError('E_SOURCE_UNREADABLE', `${backingOf} is layered on ${path}, which cannot be opened: ${error.message}`, { subject: { path }, cause: error });
  }
}

/**
 * The format to read `file` as: `wanted` when given (raw whatever the content; another format
 * only if the content is of it), else the format its content shows.
 */
async function formatOf(file: ImageFile, wanted: DiskFormat | undefined, backingOf: string | null): Promise<DiskFormat> {
  if (wanted === 'raw') return 'raw';
  const detected = await detectFormat(file);
  if (wanted === undefined || wanted === detected) return detected;
  const why = backingOf === null ? 'as asked' : `as ${backingOf} records its backing file`;
  throw file.invalid(`it should be a ${wanted} image (${why}), but its content is ${detected === 'raw' ? 'no image format Coffer knows' : `a ${detected} image's`}`);
}

/** A backing file name as an image stores it: absolute, or relative to the image's folder. */
function resolveReference(reference: string, from: string): string {
  if (reference.includes('\u0000') || reference.length === 0) {
    throw new CofferError('E_IMAGE_INVALID', `${from}: backing file name ${JSON.stringify(reference)} is not a path`, { subject: { path: from } });
  }
  return isAbsolute(reference) ? reference : resolve(dirname(from), reference);
}
