/**
 * Differencing VHDs for tests. qemu-img 7.2 makes fixed and dynamic VHDs but refuses
 * differencing ones ("Backing file not supported for file format 'vpc'"), and QEMU's reader
 * ignores a differencing disk's parent. So a test writes a qemu-made dynamic VHD with qemu-io
 * and {@link makeDifferencingVhd} turns it into a child of a parent, by the layout of the VHD
 * specification (Microsoft, "Virtual Hard Disk Image Format Specification" 1.0):
 *
 * - footer (512 bytes, a copy at offset 0 and at the end): disk type at 60 (4 = differencing),
 *   checksum at 64, unique id at 68 (16 bytes), time stamp at 24;
 * - dynamic header (1024 bytes at 512): table offset at 16, max table entries at 28, checksum
 *   at 36, parent unique id at 40, parent time stamp at 56, parent name (UTF-16 big-endian,
 *   512 bytes) at 64, eight parent locator entries of 24 bytes from 576 (platform code, data
 *   space, data length, reserved, data offset as a 64-bit number at +16);
 * - each allocated block starts with a sector bitmap (bit 7 of byte 0 is the block's first
 *   sector): a differencing disk's set bits are the sectors it holds, the others come from its
 *   parent.
 *
 * Checksums are the one's complement of the byte sum with the checksum field left out,
 * computed here, not by the reader under test.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';

/** A parent locator: `W2ru` a path relative to the child, `W2ku` an absolute one (both UTF-16LE). */
export interface VhdLocator {
  platform: 'W2ru' | 'W2ku';
  path: string;
}

/** The one's complement of the byte sum of `region`, the 4 bytes at `checksumAt` left out. */
function checksum(region: Buffer, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < region.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += region[i] as number;
  return ~sum >>> 0;
}

/** Rewrites the checksum of the `length` bytes at `at` (a footer: 512, checksum at 64; a dynamic header: 1024, at 36). */
export function rewriteVhdChecksum(bytes: Buffer, at: number, length: number, checksumAt: number): void {
  const region = bytes.subarray(at, at + length);
  region.writeUInt32BE(checksum(region, checksumAt), checksumAt);
}

/**
 * Turns the dynamic VHD at `path` into a differencing child of `parent`: disk type 4 in both
 * footers, the parent's unique id and time stamp, its name, locators whose data is appended
 * before the footer, and bitmaps holding only the sectors of `held` (byte ranges, 512-aligned).
 * `blockBytes` is the dynamic disk's block size (qemu-img's: 2 MiB).
 */
export async function makeDifferencingVhd(path: string, parent: string, held: readonly { offset: number; length: number }[], locators: readonly VhdLocator[], blockBytes = 2 * 1024 * 1024): Promise<void> {
  const bytes = await readFile(path);
  const parentBytes = await readFile(parent);
  const parentFooter = parentBytes.subarray(0, 8).toString('latin1') === 'conectix' ? parentBytes.subarray(0, 512) : parentBytes.subarray(parentBytes.length - 512);
  const body = bytes.subarray(0, bytes.length - 512);
  const footer = Buffer.from(bytes.subarray(0, 512));
  footer.writeUInt32BE(4, 60);
  rewriteVhdChecksum(footer, 0, 512, 64);

  const header = Buffer.from(bytes.subarray(512, 1536));
  parentFooter.copy(header, 40, 68, 84); // parent unique id
  header.writeUInt32BE(parentFooter.readUInt32BE(24), 56); // parent time stamp
  const name = Buffer.from(basename(parent), 'utf16le').swap16();
  name.copy(header, 64);
  const tails: Buffer[] = [];
  let dataAt = body.length;
  locators.forEach((locator, i) => {
    const data = Buffer.from(locator.path, 'utf16le');
    const space = Math.ceil(data.length / 512) * 512;
    const entry = 576 + i * 24;
    header.write(locator.platform, entry, 'latin1');
    header.writeUInt32BE(space, entry + 4);
    header.writeUInt32BE(data.length, entry + 8);
    header.writeBigUInt64BE(BigInt(dataAt), entry + 16);
    tails.push(Buffer.concat([data, Buffer.alloc(space - data.length)]));
    dataAt += space;
  });
  rewriteVhdChecksum(header, 0, 1024, 36);

  const image = Buffer.concat([body, ...tails, footer]);
  footer.copy(image, 0);
  header.copy(image, 512);
  const tableOffset = Number(header.readBigUInt64BE(16));
  const entries = header.readUInt32BE(28);
  const sectorsPerBlock = blockBytes / 512;
  for (let block = 0; block < entries; block++) {
    const sector = image.readUInt32BE(tableOffset + block * 4);
    if (sector === 0xffff_ffff) continue;
    const bitmap = image.subarray(sector * 512, sector * 512 + Math.ceil(sectorsPerBlock / 8 / 512) * 512);
    bitmap.fill(0);
    for (const { offset, length } of held) {
      for (let s = offset / 512; s < (offset + length) / 512; s++) {
        const within = s - block * sectorsPerBlock;
        if (within >= 0 && within < sectorsPerBlock) bitmap[within >> 3] = (bitmap[within >> 3] as number) | (0x80 >> (within & 7));
      }
    }
  }
  await writeFile(path, image);
}
