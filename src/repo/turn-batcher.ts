/**
 * Gathers the calls made during one turn of the event loop and sends them together, as at
 * most `groups()` batches (one per codec thread): many small tasks cost one round trip to a
 * worker each instead of one per call. `setImmediate` runs right after the poll that
 * brought the callers' inputs: no wait is added.
 *
 * `send` answers, in order, one result per item: a result that is an `Error` rejects its
 * item's promise, the others resolve it; a rejected `send` rejects its whole batch.
 */
export class TurnBatcher<T, R> {
  private waiting: { item: T; resolve: (result: R) => void; reject: (error: unknown) => void }[] = [];

  constructor(
    private readonly groups: () => number,
    private readonly send: (items: T[]) => Promise<(R | Error)[]>,
  ) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.waiting.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const waiting = this.waiting;
    this.waiting = [];
    const perGroup = Math.ceil(waiting.length / Math.max(1, this.groups()));
    for (let start = 0; start < waiting.length; start += perGroup) {
      const group = waiting.slice(start, start + perGroup);
      let sent: Promise<(R | Error)[]>;
      try {
        sent = this.send(group.map((w) => w.item));
      } catch (error) {
        sent = Promise.reject(error);
      }
      sent.then(
        (results) =>
          group.forEach((w, i) => {
            if (i >= results.length) return w.reject(new Error('a batch answered fewer results than it was given'));
            const result = results[i] as R | Error;
            if (result instanceof Error) w.reject(result);
            else w.resolve(result);
          }),
        (error: unknown) => {
          for (const w of group) w.reject(error);
        },
      );
    }
  }
}
