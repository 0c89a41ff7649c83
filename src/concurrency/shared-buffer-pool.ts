import { Fifo } from './fifo.js';

/**
 * A fixed set of equal buffers in shared memory. `acquire` waits while all are in use, which
 * is the backpressure that keeps a pipeline's memory at `count × size` whatever the disk
 * size. Buffers live in SharedArrayBuffers so worker threads read them without a copy. With
 * `lazy`, a buffer is allocated at the first `acquire` that finds none free (a reader that
 * may never need all of them, or any), up to `count`.
 */
export class SharedBufferPool {
  private readonly free: Uint8Array[] = [];
  private readonly waiting = new Fifo<(buffer: Uint8Array) => void>();
  private made = 0;

  constructor(
    readonly size: number,
    readonly count: number,
    options: { lazy?: boolean } = {},
  ) {
    if (options.lazy !== true) while (this.made < count) this.free.push(this.make());
  }

  /** A free buffer, when one is. */
  acquire(): Promise<Uint8Array> {
    const buffer = this.free.pop() ?? (this.made < this.count ? this.make() : undefined);
    if (buffer !== undefined) return Promise.resolve(buffer);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Gives a buffer back (exactly once per acquire). */
  release(buffer: Uint8Array): void {
    const full = new Uint8Array(buffer.buffer, 0, this.size);
    const waiter = this.waiting.shift();
    if (waiter !== undefined) waiter(full);
    else this.free.push(full);
  }

  private make(): Uint8Array {
    this.made += 1;
    return new Uint8Array(new SharedArrayBuffer(this.size));
  }
}
