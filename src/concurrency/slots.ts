import { Fifo } from './fifo.js';

/**
 * A counting semaphore: at most `count` holders at once, waiters served in order. What bounds
 * the files a file backup or restore has in flight (and so its memory) when the work is not
 * one flat list for {@link forEachLimited} but a tree walked recursively.
 */
export class Slots {
  private readonly waiting = new Fifo<() => void>();

  constructor(private free: number) {}

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Gives back a slot (exactly once per acquire). */
  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.free++;
  }

  /** Runs `fn` holding a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
