import { isAllZero } from './unit-cutter.js';

/** What an appender writes through (an OutputFile). */
export interface VectoredOutput {
  /** Writes `chunks` one after the other from `offset`. */
  writevAt(chunks: readonly Uint8Array[], offset: number): Promise<void>;
}

/** Bytes gathered before `add` waits for them to be written (backpressure on copied pieces). */
const FLUSH_BYTES = 8 * 1024 * 1024;
/** Most bytes of queued batches joined into one `pwritev` (they are all held until it completes). */
const MAX_WRITE_BYTES = 16 * 1024 * 1024;

/** Pieces waiting to be written at `at`, and who waits for them. */
interface Batch {
  at: number;
  chunks: Uint8Array[];
  bytes: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The end of an image file written in one pass, where a writer appends its data units
 * (clusters, blocks, grains, tables) in file order: appended pieces are gathered into
 * batches that reach the file in one `pwritev` each, without being copied into a staging
 * buffer. `skip` leaves a hole.
 *
 * Writing runs behind the appending: `flush` closes the batch gathered so far and returns
 * the promise that it has been written, without waiting for it, so a writer can cut and
 * map the next part of the disk while the previous one is written. One `pwritev` runs at a
 * time (writes into one file serialize on its inode lock in the kernel anyway); batches closed
 * meanwhile wait, and those that continue each other are joined into the next `pwritev`
 * (up to {@link MAX_WRITE_BYTES}). A failed write fails its batch and every later one.
 *
 * A piece is *borrowed* (kept by reference: the caller must leave it unchanged until the
 * promise of a `flush` or `release` made after it resolves), *copied* (the caller may reuse
 * its buffer at once) or *taken* (the caller never changes it again).
 */
export class FileAppender {
  private chunks: Uint8Array[] = [];
  private gathered = 0;
  private start: number;
  private borrowed = false;
  private readonly queue: Batch[] = [];
  private last: Promise<void> = Promise.resolve();
  private writing = false;
  private failure: { error: unknown } | undefined;

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
    void this.flush();
    this.start += length;
  }

  /**
   * Closes the batch gathered so far and queues it for writing; the promise resolves once
   * everything appended before this call is in the file (borrowed pieces may be reused then).
   */
  flush(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure.error);
    if (this.gathered === 0) return this.last;
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Nobody may wait for a batch closed by `skip`: its failure reaches the next waiter.
    done.catch(() => undefined);
    this.queue.push({ at: this.start, chunks: this.chunks, bytes: this.gathered, done, resolve, reject });
    this.start += this.gathered;
    this.chunks = [];
    this.gathered = 0;
    this.borrowed = false;
    this.last = done;
    if (!this.writing) void this.drain();
    return done;
  }

  /**
   * What a writer returns its caller's buffer after: the flush of the borrowed pieces if any
   * wait, else the write of everything closed before.
   */
  release(): Promise<void> {
    return this.borrowed ? this.flush() : this.failure !== undefined ? Promise.reject(this.failure.error) : this.last;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const run = takeContiguous(this.queue);
      const first = run[0] as Batch;
      try {
        if (this.failure !== undefined) throw this.failure.error;
        await this.file.writevAt(
          run.flatMap((batch) => batch.chunks),
          first.at,
        );
        for (const batch of run) batch.resolve();
      } catch (error) {
        this.failure ??= { error };
        for (const batch of run) batch.reject(error);
      }
    }
    this.writing = false;
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

/**
 * Removes from the head of `queue` the first batch and those that continue it in the file
 * without a gap, within {@link MAX_WRITE_BYTES}.
 */
function takeContiguous(queue: Batch[]): Batch[] {
  let count = 1;
  let end = (queue[0] as Batch).at + (queue[0] as Batch).bytes;
  let bytes = (queue[0] as Batch).bytes;
  while (count < queue.length) {
    const next = queue[count] as Batch;
    if (next.at !== end || bytes + next.bytes > MAX_WRITE_BYTES) break;
    end += next.bytes;
    bytes += next.bytes;
    count++;
  }
  return queue.splice(0, count);
}
