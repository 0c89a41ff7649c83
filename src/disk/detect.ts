import type { DiskFormat } from './disk-image.js';
import type { ImageFile } from './image-file.js';
import { parseVhdFooter, VHD_FOOTER_SIZE } from './vhd/vhd-footer.js';

/**
 * The format of an image, from its content only, never its name:
 * - qcow2: magic `QFI\xfb` at 0;
 * - VHDX: signature `vhdxfile` at 0;
 * - VMDK: magic `KDMV` at 0 (sparse extent with an embedded descriptor), or a text
 *   descriptor starting with `# Disk DescriptorFile`;
 * - VHD (qemu-img's "vpc"): cookie `conectix` at 0 (dynamic and differencing disks keep a
 *   copy of their footer there) or in the last 512 bytes (fixed disks);
 * - anything else is raw.
 */
export async function detectFormat(file: ImageFile): Promise<DiskFormat> {
  // A fixed VHD's first bytes are its guest's: a guest that wrote an image header there must
  // not make the disk read as that image (whose backing file could name any host file). Its
  // footer, past the guest's disk, decides first when it is whole and sized for this file.
  if (await isFixedVhd(file)) return 'vpc';
  const head = await file.readAt(0, Math.min(file.size, 512));
  const ascii = (start: number, length: number) => head.subarray(start, start + length).toString('latin1');
  if (head.length >= 4 && head.readUInt32BE(0) === 0x514649fb) return 'qcow2';
  if (ascii(0, 8) === 'vhdxfile') return 'vhdx';
  if (ascii(0, 4) === 'KDMV' || ascii(0, 21) === '# Disk DescriptorFile') return 'vmdk';
  if (ascii(0, 8) === 'conectix') return 'vpc';
  if (file.size >= 512 && file.size % 512 === 0) {
    const tail = await file.readAt(file.size - 512, 512);
    if (tail.subarray(0, 8).toString('latin1') === 'conectix') return 'vpc';
  }
  return 'raw';
}

/**
 * The last 512 bytes are a fixed VHD's footer, whole (vhd/vhd-footer.ts checks cookie,
 * checksum, version and fields) and of type fixed, with a disk filling the file before it.
 */
async function isFixedVhd(file: ImageFile): Promise<boolean> {
  if (file.size < 1024 || file.size % VHD_FOOTER_SIZE !== 0) return false;
  const tail = await file.readAt(file.size - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE);
  try {
    const footer = parseVhdFooter(tail, file);
    return footer.diskType === 'fixed' && footer.currentSize === file.size - VHD_FOOTER_SIZE;
  } catch {
    return false; // no footer, or a damaged one: the content decides
  }
}
