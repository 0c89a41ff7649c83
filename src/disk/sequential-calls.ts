import { InOrder } from './in-order.js';

/**
 * The contract every sequential image writer keeps with its caller (`DiskTarget.sequential`):
 * `write` and `skipZeros` come in disk order, each where the previous one ended, never past
 * the disk's size, and `finish` only after the whole size was given. The calls run one after
 * the other (in-order.ts); a call breaking the order fails, and every call queued after it.
 * A writer keeps its own map (clusters, blocks, grains) and gives each call its step.
 */
export class SequentialCalls {
  private position = 0;
  private readonly order = new InOrder();

  /**
   * @param what the target's name in errors ("qcow2 target")
   * @param size the disk's size in bytes
   * @param written when the bytes of the steps run so far are in the file (the writer's
   *   appender's `release`)
   */
  constructor(
    private readonly what: string,
    private readonly size: number,
    private readonly written: () => Promise<void>,
  ) {}

  /** Runs `store` for `length` bytes of data at `offset`, once the calls before it have run. */
  write(offset: number, length: number, store: () => Promise<void>): Promise<void> {
    return this.order.run(async () => {
      this.advance('written', offset, length);
      await store();
    }, this.written);
  }

  /** Runs `skip` for `length` zero bytes at `offset`, once the calls before it have run. */
  skipZeros(offset: number, length: number, skip: () => Promise<void>): Promise<void> {
    return this.order.run(async () => {
      this.advance('skipped', offset, length);
      await skip();
    }, this.written);
  }

  /** Resolves once every call has run and the whole disk was given; throws the first failure. */
  async ended(): Promise<void> {
    await this.order.idle();
    if (this.position !== this.size) throw new Error(`${this.what} got ${this.position} of ${this.size} bytes`);
  }

  private advance(how: 'written' | 'skipped', offset: number, length: number): void {
    if (offset !== this.position) throw new Error(`${this.what} ${how} at ${offset}, expected ${this.position}`);
    if (offset + length > this.size) throw new Error(`${this.what} ${how} past its size ${this.size}`);
    this.position += length;
  }
}
