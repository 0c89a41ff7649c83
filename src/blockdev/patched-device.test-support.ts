/**
 * A block device read through another with some bytes replaced, and possibly cut short:
 * the mutants of the fuzz tests and the damage of the readers' tests, without copying or
 * writing the image. It records every read, so a test can find where a reader's metadata
 * lies by reading the clean image once.
 */
import type { BlockDevice, Extent } from './block-device.js';
import { assertReadInBounds } from './extents.js';

export class PatchedDevice implements BlockDevice {
  readonly reads: { offset: number; length: number }[] = [];

  constructor(
    private readonly base: BlockDevice,
    /** Byte offset → the byte read there instead. */
    readonly patches = new Map<number, number>(),
    /** Default the base's size; smaller, a device cut short. */
    readonly size = base.size,
  ) {}

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    this.reads.push({ offset, length });
    const out = await this.base.read(offset, length, into);
    for (const [at, value] of this.patches) if (at >= offset && at < offset + length) out[at - offset] = value;
    return out;
  }

  extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    return this.base.extents(offset, length);
  }

  async close(): Promise<void> {}

  /** Inverts the byte at `at` (damage a checksum must catch). */
  async flip(at: number): Promise<void> {
    const [old] = await this.read(at, 1);
    this.patches.set(at, (old as number) ^ 0xff);
  }
}
