/**
 * The calls of a sequential image writer (`write`, `skipZeros`), run one after the other in
 * the order they were made, each call's bytes being written to the file behind it: a call's
 * `step` (cutting the data into units, mapping them, appending them) starts when the previous
 * call's step has finished, not when its bytes are in the file, and the call resolves when
 * both its step and the write that `written` returns are done. This lets a copy hand the
 * next block over while the previous one is still being written (copy-device.ts).
 * A failed step fails every call queued after it.
 */
export class InOrder {
  private tail: Promise<void> = Promise.resolve();

  /** Queues `step`; once it has run, `written()` says when its bytes are in the file. */
  run(step: () => Promise<void>, written: () => Promise<void>): Promise<void> {
    let done: Promise<void> = Promise.resolve();
    const accepted = this.tail.then(async () => {
      await step();
      done = written();
    });
    this.tail = accepted;
    return accepted.then(() => done);
  }

  /** Resolves when every queued step has run (their writes may still be under way); throws the first failure. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
