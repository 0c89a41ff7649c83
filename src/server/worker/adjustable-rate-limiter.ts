/**
 * A token bucket whose rate can change while it is used: the worker's share of a bandwidth
 * rule, updated by the parent whenever the number of tasks under the rule changes or a time
 * of day rule begins or ends. Same accounting as concurrency/RateLimiter (a take that leaves
 * the bucket in debt waits until it is repaid; callers in order of arrival); a rate change
 * applies to the tokens accrued from then on. Undefined rate: unlimited.
 */
export class AdjustableRateLimiter {
  private rate: number | undefined;
  private tokens: number;
  private last: number;
  private queue: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;

  /** `burstSeconds`: how much of the rate may pass at once after an idle spell (at least 64 KiB). */
  constructor(rate: number | undefined, private readonly burstSeconds = 0.05, private readonly now: () => number = () => performance.now()) {
    this.rate = rate;
    this.last = now();
    this.tokens = this.burst;
  }

  private get burst(): number {
    return this.rate === undefined ? Infinity : Math.max(64 * 1024, this.rate * this.burstSeconds);
  }

  /** Changes the rate (bytes per second; undefined: unlimited). A waiting take re-plans its wait. */
  setRate(rate: number | undefined): void {
    this.refill();
    this.rate = rate;
    if (this.tokens > this.burst) this.tokens = this.burst;
    this.wake?.();
  }

  get bytesPerSecond(): number | undefined {
    return this.rate;
  }

  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(() => this.spend(bytes, signal));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async spend(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    this.refill();
    this.tokens -= bytes;
    while (this.tokens < 0 && this.rate !== undefined) {
      await this.sleep((-this.tokens / this.rate) * 1000, signal);
      this.refill();
    }
    if (this.rate === undefined) this.tokens = 0;
  }

  private refill(): void {
    const now = this.now();
    if (this.rate !== undefined) this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }

  private sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.wake = undefined;
        resolve();
      };
      const onAbort = () => {
        clearTimeout(timer);
        this.wake = undefined;
        reject(signal?.reason);
      };
      const timer = setTimeout(done, Math.ceil(ms));
      this.wake = done;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
