import type { DiskFormat } from './disk-image.js';
import type { ImageFile } from './image-file.js';
import { parseVhdFooter, VHD_FOOTER_SIZE } from './vhd/vhd-footer.js';

/**
 * The format of an image, from its content only, never its name:
 * - qcow2: magic `QFI\xfb` at 0;
 * - VHDX: signature `vhdxfile` at 0;
 * - VMDK: magic `KDMV` at 0 (sparse extent with an embedded descriptor), `COWD` at 0 (an ESX
 *   sparse extent, refused alone: its descriptor names its parent), or a text
 *   descriptor: one starting with `# Disk DescriptorFile`, or as QEMU's vmdk_probe finds
 *   one, comment lines (`#…`) and lines of spaces, then `version=1`, `2` or `3` (a descriptor
 *   need not begin with the header line; one read as raw would back up its few hundred bytes
 *   of text as the disk);
 * - VHD (qemu-img's "vpc"): cookie `conectix` at 0 (dynamic and differencing disks keep a
 *   copy of their footer there) or in the last 512 bytes (fixed disks);
 * - anything else is raw.
 */
export async function detectFormat(file: ImageFile): Promise<DiskFormat> {
  // A fixed VHD's first bytes are its guest's: a guest that wrote an image header there must
  // not make the disk read as that image (whose backing file could name any host file). Its
  // footer, past the guest's disk, decides first when it is whole and sized for this file.
  if (await isFixedVhd(file)) return 'vpc';
  const head = await file.readAt(0, Math.min(file.size, PROBE_BYTES));
  const ascii = (start: number, length: number) => head.subarray(start, start + length).toString('latin1');
  if (head.length >= 4 && head.readUInt32BE(0) === 0x514649fb) return 'qcow2';
  if (ascii(0, 8) === 'vhdxfile') return 'vhdx';
  if (ascii(0, 4) === 'KDMV' || ascii(0, 4) === 'COWD' || ascii(0, 21) === '# Disk DescriptorFile' || isVmdkDescriptor(head)) return 'vmdk';
  if (ascii(0, 8) === 'conectix') return 'vpc';
  if (file.size >= 512 && file.size % 512 === 0) {
    const tail = await file.readAt(file.size - 512, 512);
    if (tail.subarray(0, 8).toString('latin1') === 'conectix') return 'vpc';
  }
  return 'raw';
}

/** How much of an image's start the probe looks at (QEMU's BLOCK_PROBE_BUF_SIZE). */
const PROBE_BYTES = 2048;

/** QEMU's vmdk_probe of a text descriptor: comments and blank lines, then `version=N` (N 1-3). */
export function isVmdkDescriptor(head: Uint8Array): boolean {
  const text = Buffer.from(head.buffer, head.byteOffset, head.length).toString('latin1');
  let at = 0;
  while (at < text.length) {
    const nl = text.indexOf('\n', at);
    const line = text.slice(at, nl < 0 ? text.length : nl);
    if (line.startsWith('#')) {
      if (nl < 0) return false;
      at = nl + 1;
      continue;
    }
    if (/^ +\r?$/.test(line) && nl >= 0) {
      at = nl + 1;
      continue;
    }
    return nl >= 0 && /^version=[123]\r?$/.test(line);
  }
  return false;
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
