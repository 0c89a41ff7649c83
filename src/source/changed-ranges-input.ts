/**
 * Where a list of changed ranges comes from: a file (the forms parseChangedRanges reads), or
 * an NBD export of a dirty bitmap — a URI `nbd://…` / `nbds://…` / `nbd+unix://…` with the
 * query parameter `bitmap=NAME`, whose `qemu:dirty-bitmap:NAME` metadata context is read
 * (e.g. `qemu-nbd -B NAME`, or QEMU's own export of a bitmap).
 */
import { readFile } from 'node:fs/promises';
import { CofferError } from '../errors/index.js';
import { mergeRanges, parseChangedRanges, type ChangedRange } from './changed-ranges.js';

/**
 * The changed ranges at `where` (a file or an NBD bitmap URI), sorted and merged.
 * @throws CofferError E_USAGE for an unreadable or malformed list, or a URI without `bitmap=`;
 * the NBD client's errors for an export it cannot read.
 */
export async function readChangedRanges(where: string): Promise<ChangedRange[]> {
  if (/^nbds?(\+unix)?:\/\//.test(where)) return rangesFromNbdBitmap(where);
  const text = await readFile(where, 'utf8').catch((error: unknown) => {
    throw new CofferError('E_USAGE', `--changed-ranges ${where}: ${(error as Error).message}`);
  });
  return parseChangedRanges(text, where);
}

async function rangesFromNbdBitmap(uri: string): Promise<ChangedRange[]> {
  const bitmap = new URL(uri).searchParams.get('bitmap');
  if (bitmap === null || bitmap === '') throw new CofferError('E_USAGE', `--changed-ranges ${uri}: add bitmap=NAME (the qemu:dirty-bitmap context to read)`);
  // Loaded here: a list in a file (the common case) needs no NBD client code at start.
  const { NbdBlockDevice } = await import('../nbd/index.js');
  const device = await NbdBlockDevice.open(uri, { dirtyBitmap: bitmap });
  try {
    const ranges: ChangedRange[] = [];
    for await (const extent of device.extents()) if (extent.changed === true) ranges.push({ offset: extent.offset, length: extent.length });
    return mergeRanges(ranges);
  } finally {
    await device.close();
  }
}
