/**
 * A bound on work in flight: `acquire()` resolves when fewer than `limit` holders remain,
 * in arrival order; `release()` hands the slot to the next waiter. `rejectWaiters` fails
 * everyone still waiting (the connection they wait for is gone).
 */
export class Slots {
  private used = 0;
  private readonly waiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];

  constructor(private readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`a bound of ${limit} requests in flight`);
  }

  get inUse(): number {
    return this.used;
  }

  acquire(): Promise<void> {
    if (this.used < this.limit) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next === undefined) this.used--;
    else next.resolve();
  }

  rejectWaiters(error: unknown): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}
