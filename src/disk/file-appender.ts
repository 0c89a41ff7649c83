import { isAllZero } from './unit-cutter.js';

/** What an appender writes through (an OutputFile). */
export interface VectoredOutput {
  /** Writes `chunks` one after the other from `offset`. */
  writevAt(chunks: readonly Uint8Array[], offset: number): Promise<void>;
}

/** Bytes gathered before they are written even when nothing forces it. */
const FLUSH_BYTES = 8 * 1024 * 1024;

/**
 * The end of an image file written in one pass, where a writer appends its data units
 * (clusters, blocks, grains, tables) in file order: appended pieces are gathered and reach
 * the file in one `pwritev` per {@link FLUSH_BYTES} (or per `flush`), instead of one write
 * per unit, and without copying them into a staging buffer. `skip` leaves a hole.
 *
 * A piece is *borrowed* (kept by reference: the caller must leave it unchanged until the next
 * `flush`, so a writer flushes before handing back a buffer it was given) or *copied* (the
 * caller may reuse its buffer at once). Writes happen only in `flush`, one at a time.
 */
export class FileAppender {
  private chunks: Uint8Array[] = [];
  private gathered = 0;
  private start: number;
  private borrowed = false;

  constructor(
    private readonly file: VectoredOutput,
    /** Where the first appended byte goes. */
    at: number,
  ) {
    this.start = at;
  }

  /** Where the next appended byte goes. */
  get end(): number {
    return this.start + this.gathered;
  }

  /** Appends `piece` by reference (see the class comment); returns its offset in the file. */
  async borrow(piece: Uint8Array): Promise<number> {
    this.borrowed = true;
    return this.add(piece);
  }

  /** Appends `piece`, which the appender now owns (the caller never changes it again); returns its offset. */
  async take(piece: Uint8Array): Promise<number> {
    return this.add(piece);
  }

  /** Appends a copy of `piece` (the caller may reuse it at once); returns its offset in the file. */
  async copy(piece: Uint8Array): Promise<number> {
    return this.add(Uint8Array.prototype.slice.call(piece));
  }

  /**
   * Appends `piece` by reference but leaves each all-zero `grain` of it as a hole (`skip`);
   * returns its offset in the file.
   */
  async borrowSparse(piece: Uint8Array, grain: number): Promise<number> {
    const at = this.end;
    for (let done = 0; done < piece.length; done += grain) {
      const part = piece.subarray(done, Math.min(piece.length, done + grain));
      if (isAllZero(part)) await this.skip(part.length);
      else await this.borrow(part);
    }
    return at;
  }

  /** Leaves `length` bytes unwritten (a hole in a sparse file) after what was appended. */
  async skip(length: number): Promise<void> {
    if (length === 0) return;
    await this.flush();
    this.start += length;
  }

  /** Writes everything gathered; borrowed pieces may be reused after it. */
  async flush(): Promise<void> {
    if (this.gathered === 0) return;
    const chunks = this.chunks;
    const at = this.start;
    this.start += this.gathered;
    this.chunks = [];
    this.gathered = 0;
    this.borrowed = false;
    await this.file.writevAt(chunks, at);
  }

  /** Flushes only if a borrowed piece is waiting (before a writer returns its caller's buffer). */
  async release(): Promise<void> {
    if (this.borrowed) await this.flush();
  }

  private async add(piece: Uint8Array): Promise<number> {
    const at = this.end;
    if (piece.length === 0) return at;
    // A piece right after the previous one in the same memory extends it (one iovec).
    const last = this.chunks[this.chunks.length - 1];
    if (last !== undefined && last.buffer === piece.buffer && last.byteOffset + last.length === piece.byteOffset) {
      this.chunks[this.chunks.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.length + piece.length);
    } else {
      this.chunks.push(piece);
    }
    this.gathered += piece.length;
    if (this.gathered >= FLUSH_BYTES) await this.flush();
    return at;
  }
}
