import { SEAL_OVERHEAD } from './codec.js';
import { FRAME_HEADER_SIZE, FRAME_MAGIC, FRAME_TABLE_ENTRY_SIZE } from './format/pack.js';
import { copyBytes, sharedMemory } from '../native/index.js';

/**
 * A reusable piece of shared memory in which one pack frame is laid out, sealed and handed
 * back (pack-writer.ts): the new chunks are copied straight to their place in the frame's
 * plaintext (format/pack.ts: magic, count, a table of `count` × 36 bytes, then the chunks in
 * order), a codec worker seals the plaintext in place (codec.ts `sealInto`: the stored
 * envelope is written from byte 0 over the plaintext), and the writer copies the envelope
 * into its pack. Nothing crosses between threads but the slot's handle and two numbers.
 *
 * Chunks are copied after a table sized for `maxChunks`; a frame closed with fewer chunks
 * (the end of a disk, or blocks larger than 256 KiB that reach the frame's byte limit first)
 * has its chunks moved down over the unused table entries when it is closed.
 */
export class FrameSlot {
  readonly memory: Buffer;
  private readonly ids: Buffer[] = [];
  private readonly lengths: number[] = [];
  private dataBytes = 0;

  /** Room for `maxChunks` chunks of `maxPlaintext` bytes in all, plus a chunk of `maxChunk` past it. */
  constructor(
    private readonly maxChunks: number,
    maxPlaintext: number,
    maxChunk: number,
  ) {
    this.memory = Buffer.from(sharedMemory(FrameSlot.capacity(maxChunks, maxPlaintext, maxChunk)));
  }

  /** The bytes of one slot. */
  static capacity(maxChunks: number, maxPlaintext: number, maxChunk: number): number {
    return FRAME_HEADER_SIZE + maxChunks * FRAME_TABLE_ENTRY_SIZE + maxPlaintext + maxChunk + SEAL_OVERHEAD;
  }

  /** The largest chunk an empty slot made with these bounds takes (what {@link fits} allows alone). */
  static largestChunk(maxPlaintext: number, maxChunk: number): number {
    return maxPlaintext + maxChunk;
  }

  /** Chunks staged. */
  get count(): number {
    return this.ids.length;
  }

  /** Bytes of chunk data staged. */
  get bytes(): number {
    return this.dataBytes;
  }

  /** True when one more chunk of `length` bytes fits. */
  fits(length: number): boolean {
    return this.count < this.maxChunks && this.dataStart(this.maxChunks) + this.dataBytes + length + SEAL_OVERHEAD <= this.memory.length;
  }

  /** Copies a chunk to its place; the caller checked {@link fits}. */
  add(id: Uint8Array, data: Uint8Array): void {
    if (!this.fits(data.length) || id.length !== 32) throw new RangeError('the chunk does not fit in the frame slot');
    copyBytes(this.memory, data, this.dataStart(this.maxChunks) + this.dataBytes);
    this.ids.push(Buffer.from(id));
    this.lengths.push(data.length);
    this.dataBytes += data.length;
  }

  /**
   * Writes the header and table, moves the chunks down if the table is shorter than planned,
   * and returns the plaintext's length and where each chunk is in it. The slot is then
   * sealed in place; {@link reset} empties it for the next frame.
   */
  close(): { length: number; chunks: { id: Buffer; offset: number; length: number }[] } {
    const count = this.count;
    const start = this.dataStart(count);
    const planned = this.dataStart(this.maxChunks);
    if (start !== planned) copyBytes(this.memory, this.memory.subarray(planned, planned + this.dataBytes), start);
    FRAME_MAGIC.copy(this.memory, 0);
    this.memory.writeUInt32LE(count, 4);
    let offset = start;
    const chunks = this.ids.map((id, i) => {
      const length = this.lengths[i] as number;
      const at = FRAME_HEADER_SIZE + i * FRAME_TABLE_ENTRY_SIZE;
      id.copy(this.memory, at);
      this.memory.writeUInt32LE(length, at + 32);
      const chunk = { id, offset, length };
      offset += length;
      return chunk;
    });
    return { length: start + this.dataBytes, chunks };
  }

  /** Empties the slot. */
  reset(): void {
    this.ids.length = 0;
    this.lengths.length = 0;
    this.dataBytes = 0;
  }

  private dataStart(count: number): number {
    return FRAME_HEADER_SIZE + count * FRAME_TABLE_ENTRY_SIZE;
  }
}
