import { Fifo } from './fifo.js';

/**
 * A fixed set of equal buffers in shared memory. `acquire` waits while all are in use, which
 * is the backpressure that keeps a pipeline's memory at `count × size` whatever the disk
 * size. Buffers live in SharedArrayBuffers so worker threads read them without a copy.
 */
export class SharedBufferPool {
  private readonly free: Uint8Array[] = [];
  private readonly waiting = new Fifo<(buffer: Uint8Array) => void>();

  constructor(
    readonly size: number,
    readonly count: number,
  ) {
    for (let i = 0; i < count; i++) this.free.push(new Uint8Array(new SharedArrayBuffer(size)));
  }

  /** A free buffer, when one is. */
  acquire(): Promise<Uint8Array> {
    const buffer = this.free.pop();
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
}
