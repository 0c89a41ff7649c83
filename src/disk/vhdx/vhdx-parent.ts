import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { findParent } from '../backing.js';
import type { BackingOpener, DiskImage } from '../disk-image.js';
import type { VhdxSource } from './vhdx-replayed-file.js';

/**
 * Where a differencing VHDX's parent may be, best first: the locator's relative_path (from
 * the child's folder), then absolute_win32_path. Windows separators become `/`; a path with a
 * drive letter or a UNC share cannot exist here, so its file name is tried beside the child
 * (a VM's folder copied whole). volume_path (`\\?\Volume{…}\…`) names a Windows volume and is
 * not tried. Pure.
 */
export function vhdxParentCandidates(childPath: string, locator: ReadonlyMap<string, string>): string[] {
  const folder = dirname(childPath);
  const out: string[] = [];
  for (const key of ['relative_path', 'absolute_win32_path']) {
    const raw = locator.get(key);
    if (raw === undefined || raw.length === 0 || raw.includes('\0')) continue;
    let path = raw.replace(/\\/g, '/');
    if (/^[A-Za-z]:\//.test(path) || path.startsWith('//')) path = basename(path);
    const full = isAbsolute(path) ? path : resolve(folder, path);
    if (!out.includes(full)) out.push(full);
  }
  return out;
}

/** A GUID as a locator writes it ("{…}", any case) in the upper-case form vhdx-guid.ts reads. */
export function normalizeLinkage(text: string): string {
  return text.replace(/^\{|\}$/g, '').toUpperCase();
}

/**
 * Opens the parent of a differencing VHDX: the first candidate that exists, through
 * `openBacking`. When the parent is a VHDX, its data write GUID must be the locator's
 * parent_linkage (or parent_linkage2), else `E_IMAGE_INVALID` (the parent changed since the
 * child was made). No candidate existing is `E_SOURCE_UNREADABLE`, naming them.
 * `dataWriteGuidOf` tells a VHDX parent's GUID (null for other formats).
 */
export async function openVhdxParent(
  file: VhdxSource,
  options: { locator: ReadonlyMap<string, string>; openBacking: BackingOpener; dataWriteGuidOf: (image: DiskImage) => string | null },
): Promise<DiskImage> {
  const { locator, openBacking, dataWriteGuidOf } = options;
  const linkage = locator.get('parent_linkage');
  if (linkage === undefined) throw file.invalid('VHDX differencing disk has no parent_linkage in its parent locator');
  const candidates = vhdxParentCandidates(file.path, locator);
  if (candidates.length === 0) throw file.invalid('VHDX differencing disk names no parent path (no relative_path or absolute_win32_path)');
  const found = await findParent(file.path, candidates, 'VHDX differencing disk');
  const parent = await openBacking(found, file.path, 'vhdx');
  const actual = dataWriteGuidOf(parent);
  const accepted = [linkage, locator.get('parent_linkage2')].filter((v): v is string => v !== undefined).map(normalizeLinkage);
  if (actual !== null && !accepted.includes(actual)) {
    await parent.close();
    throw file.invalid(`VHDX differencing disk expects a parent with data write GUID ${normalizeLinkage(linkage)} but ${found} has ${actual} (the parent was replaced or modified)`);
  }
  return parent;
}
