import type { DiskFormat } from './disk-image.js';
import type { ImageFile } from './image-file.js';
import { vhdChecksum } from './vhd/vhd-footer.js';

/** VHD footer fields (vhd/vhd-footer.ts): current size at 48, disk type at 60 (2: fixed), checksum at 64. */
const FIXED_DISK_TYPE = 2;

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

/** The last 512 bytes are a fixed VHD's footer: cookie, checksum, type fixed, and a disk filling the file before it. */
async function isFixedVhd(file: ImageFile): Promise<boolean> {
  if (file.size < 1024 || file.size % 512 !== 0) return false;
  const tail = await file.readAt(file.size - 512, 512);
  if (tail.subarray(0, 8).toString('latin1') !== 'conectix') return false;
  if (tail.readUInt32BE(64) !== vhdChecksum(tail, 64) || tail.readUInt32BE(60) !== FIXED_DISK_TYPE) return false;
  return Number(tail.readBigUInt64BE(48)) === file.size - 512;
}
