import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { findParent } from '../backing.js';
import type { BackingOpener, DiskImage } from '../disk-image.js';
import type { ImageFile } from '../image-file.js';
import { decodeParentLocator, LOCATOR_PLATFORMS, type VhdDynamicHeader } from './vhd-dynamic-header.js';
import { formatUniqueId } from './vhd-footer.js';
import { FixedVhd } from './vhd-fixed.js';
import { SparseVhd } from './vhd-sparse.js';

/**
 * The paths where a differencing disk's parent may be, best first: the locators in the order
 * W2ru (relative), W2ku (absolute), MacX, Wi2r, Wi2k, then the parent unicode name. Windows
 * separators become `/`; a path with a drive letter or a UNC share cannot exist here, so its
 * file name is tried beside the child instead (a VM's folder copied whole). Relative paths
 * are resolved against the child's folder. Pure: `locatorData` holds each
 * used locator's bytes, in header order.
 */
export function parentCandidates(childPath: string, options: { header: VhdDynamicHeader; locatorData: readonly Uint8Array[] }): string[] {
  const { header, locatorData } = options;
  const stored: string[] = [];
  for (const platform of LOCATOR_PLATFORMS) {
    header.parentLocators.forEach((locator, i) => {
      const data = locatorData[i];
      if (locator.platform !== platform || data === undefined) return;
      const path = decodeParentLocator(platform, data);
      if (path !== null) stored.push(path);
    });
  }
  if (header.parentName !== null) stored.push(header.parentName);
  const folder = dirname(childPath);
  const out: string[] = [];
  for (const raw of stored) {
    if (raw.includes('\0')) continue;
    let path = raw.replace(/\\/g, '/');
    if (/^[A-Za-z]:\//.test(path) || path.startsWith('//')) path = basename(path);
    const full = isAbsolute(path) ? path : resolve(folder, path);
    if (!out.includes(full)) out.push(full);
  }
  return out;
}

/**
 * Opens the parent of a differencing disk: the first of {@link parentCandidates} that exists,
 * through `openBacking` (which bounds the chain and refuses loops). A VHD parent must carry
 * the unique id the child names, else `E_IMAGE_INVALID` (the parent was replaced or edited
 * since the child was made). No candidate existing is `E_SOURCE_UNREADABLE`, naming them.
 */
export async function openVhdParent(file: ImageFile, options: { header: VhdDynamicHeader; openBacking: BackingOpener }): Promise<DiskImage> {
  const { header, openBacking } = options;
  const locatorData: Uint8Array[] = [];
  for (const locator of header.parentLocators) locatorData.push(await file.readAt(locator.dataOffset, locator.dataLength));
  const candidates = parentCandidates(file.path, { header, locatorData });
  if (candidates.length === 0) throw file.invalid('VHD differencing disk names no parent (no usable parent locator and no parent name)');
  const found = await findParent(file.path, candidates, 'VHD differencing disk');
  const parent = await openBacking(found, file.path, 'vpc');
  const parentId = parent instanceof SparseVhd || parent instanceof FixedVhd ? parent.footer.uniqueId : null;
  if (parentId !== null && parentId !== header.parentUniqueId) {
    await parent.close();
    throw file.invalid(
      `VHD differencing disk expects a parent with unique id ${formatUniqueId(header.parentUniqueId)} but ${found} has ${formatUniqueId(parentId)} (the parent was replaced or modified)`,
    );
  }
  return parent;
}
