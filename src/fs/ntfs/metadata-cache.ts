import type { BlockDevice } from '../../blockdev/index.js';

/**
 * Reads metadata (MFT records, index blocks) through aligned 64 KiB pieces of the device,
 * keeping the last {@link PIECES} pieces (4 MiB): a directory of a thousand files reads its
 * MFT records in a few dozen device reads, whatever the device's chunking. File contents
 * bypass it.
 */
const PIECE = 64 * 1024;
const PIECES = 64;

export class MetadataCache {
  private readonly pieces = new Map<number, Promise<Uint8Array>>();

  constructor(private readonly device: BlockDevice) {}

  /** A copy of `[offset, offset + length)` (into `into` when given); the caller may modify it (fixups). */
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const index = Math.floor(at / PIECE);
      const piece = await this.piece(index);
      const from = at - index * PIECE;
      const n = Math.min(length - done, piece.length - from);
      if (n <= 0) throw new RangeError(`metadata read at ${at} beyond the device`);
      out.set(piece.subarray(from, from + n), done);
      done += n;
    }
    return out;
  }

  private piece(index: number): Promise<Uint8Array> {
    const cached = this.pieces.get(index);
    if (cached !== undefined) {
      this.pieces.delete(index); // most recently used goes last
      this.pieces.set(index, cached);
      return cached;
    }
    const start = index * PIECE;
    const promise = this.device.read(start, Math.min(PIECE, this.device.size - start));
    promise.catch(() => this.pieces.delete(index));
    this.pieces.set(index, promise);
    while (this.pieces.size > PIECES) this.pieces.delete(this.pieces.keys().next().value as number);
    return promise;
  }
}
