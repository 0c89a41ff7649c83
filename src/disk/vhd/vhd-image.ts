/**
 * Opens VHD images (qemu-img's "vpc"): fixed, dynamic and differencing disks. The layouts are
 * documented beside their parsers: vhd-footer.ts (the footer), vhd-dynamic-header.ts (the
 * dynamic header, parent locators, BAT and sector bitmaps).
 *
 * Which footer is trusted: a file whose last 512 bytes are a footer of a fixed disk is a fixed
 * disk, whatever its guest data starts with; otherwise the copy in the first 512 bytes is the
 * footer (as QEMU reads it; it survives a truncated file, which then fails on its BAT), and
 * failing that the one at the end.
 */
import type { DiskImage, BackingOpener } from '../disk-image.js';
import type { ImageFile } from '../image-file.js';
import { parseBat } from './vhd-bat.js';
import { parseVhdDynamicHeader, VHD_DYNAMIC_HEADER_SIZE } from './vhd-dynamic-header.js';
import { DISK_TYPE_FIXED, hasFooterCookie, parseVhdFooter, peekDiskType, VHD_FOOTER_SIZE, type VhdFooter } from './vhd-footer.js';
import { FixedVhd } from './vhd-fixed.js';
import { openVhdParent } from './vhd-parent.js';
import { SparseVhd } from './vhd-sparse.js';

/**
 * Opens a VHD image, with the parent chain of a differencing disk (opened through
 * `openBacking`). Takes ownership of `file`: the image's `close()` closes it and the parent.
 * Throws `E_IMAGE_INVALID` naming the image for anything the image contradicts itself on
 * (checksums, block size, tables or blocks outside the file, a parent with another unique
 * id), `E_UNSUPPORTED_FORMAT` for unknown format versions, `E_SOURCE_UNREADABLE` when the
 * parent cannot be found.
 */
export async function openVhd(file: ImageFile, openBacking: BackingOpener): Promise<DiskImage> {
  const footer = await readFooter(file);
  if (footer.diskType === 'fixed') {
    if (footer.currentSize + VHD_FOOTER_SIZE > file.size) {
      throw file.invalid(`fixed VHD of ${footer.currentSize} bytes needs a file of ${footer.currentSize + VHD_FOOTER_SIZE} bytes, it has ${file.size}`);
    }
    return new FixedVhd(file, footer);
  }

  const dataOffset = footer.dataOffset as number; // set for every non-fixed disk
  if (dataOffset + VHD_DYNAMIC_HEADER_SIZE > file.size) throw file.invalid(`VHD dynamic header at ${dataOffset} lies past the end of the file (${file.size} bytes)`);
  const header = parseVhdDynamicHeader(await file.readAt(dataOffset, VHD_DYNAMIC_HEADER_SIZE), file);
  const blocksInUse = Math.ceil(footer.currentSize / header.blockSize);
  if (blocksInUse > header.maxTableEntries) {
    throw file.invalid(`VHD virtual size ${footer.currentSize} needs ${blocksInUse} blocks of ${header.blockSize} bytes but the allocation table has ${header.maxTableEntries}`);
  }
  const layout = { blockSize: header.blockSize, bitmapSize: header.bitmapSize, blocksInUse };
  const bat = parseBat(await file.readAt(header.tableOffset, header.maxTableEntries * 4), { layout, image: file });
  const parent = footer.diskType === 'differencing' ? await openVhdParent(file, { header, openBacking }) : null;
  return new SparseVhd(file, footer, header, bat, parent);
}

/** The footer to trust (see the module comment), parsed and checked. */
async function readFooter(file: ImageFile): Promise<VhdFooter> {
  if (file.size < VHD_FOOTER_SIZE) throw file.invalid(`a VHD has at least ${VHD_FOOTER_SIZE} bytes, this file has ${file.size}`);
  const tail = await file.readAt(file.size - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE);
  if (hasFooterCookie(tail) && peekDiskType(tail) === DISK_TYPE_FIXED) return parseVhdFooter(tail, file);
  const head = await file.readAt(0, VHD_FOOTER_SIZE);
  if (hasFooterCookie(head)) {
    const footer = parseVhdFooter(head, file);
    if (footer.diskType === 'fixed') throw file.invalid('VHD footer at the start of the file says fixed, but a fixed disk keeps its footer at the end');
    return footer;
  }
  if (hasFooterCookie(tail)) return parseVhdFooter(tail, file);
  throw file.invalid('no VHD footer ("conectix") at the start or the end of the file');
}
