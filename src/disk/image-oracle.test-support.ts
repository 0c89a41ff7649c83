/**
 * The two sides of every reader test: the bytes qemu-img reads from an image (the oracle) and
 * the bytes a Coffer DiskImage reads, each whole.
 */
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DiskImage } from './disk-image.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** What `qemu-img convert -O raw` makes of `image` (its whole chain), through a temporary file in `scratchDir`; `format` as qemu-img names it, or probed. */
export async function qemuImgRaw(image: string, scratchDir: string, format?: string): Promise<Buffer> {
  const out = join(scratchDir, `oracle-${Math.random().toString(36).slice(2)}.raw`);
  await run('qemu-img', ['convert', ...(format === undefined ? [] : ['-f', format]), '-O', 'raw', image, out], { maxBuffer: 64 * MiB });
  try {
    return await readFile(out);
  } finally {
    await rm(out, { force: true });
  }
}

/** Every byte of `image`, read in 3 MiB pieces (so reads cross the formats' block boundaries). */
export async function readWholeImage(image: DiskImage): Promise<Buffer> {
  const out = Buffer.alloc(image.size);
  for (let offset = 0; offset < image.size; offset += 3 * MiB) {
    const length = Math.min(3 * MiB, image.size - offset);
    await image.read(offset, length, out.subarray(offset, offset + length));
  }
  return out;
}
