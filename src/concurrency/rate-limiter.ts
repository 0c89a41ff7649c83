/**
 * A token bucket that holds a byte stream to an average rate (`--limit-upload`,
 * `--limit-download`). Tokens accrue at `bytesPerSecond` up to `burst`; `take(n)` spends `n`
 * and, when that leaves the bucket in debt, waits until the debt is repaid. Transfers larger
 * than the burst (a 4 MiB object under a 64 KiB burst) are therefore allowed, and paid for
 * afterwards by whoever comes next, so the long-run rate is exact whatever the sizes.
 *
 * Tokens are computed from the clock at each call, not counted by timers: a sleep that wakes
 * late (a loaded machine) has accrued the tokens it overslept (up to `burst`), so lateness
 * does not lower the rate. Callers are served one at a time, in order of arrival.
 *
 * The clock and the sleep are injected (the core never reads the clock on its own); the
 * defaults are `performance.now()` and `setTimeout`.
 */
export interface RateLimiterOptions {
  /** The average rate, in bytes per second (> 0). */
  bytesPerSecond: number;
  /**
   * How many bytes may pass at once after an idle spell. Default: a quarter second of the
   * rate, at least 64 KiB — small enough that a burst cannot blow a limit's purpose, large
   * enough that timer granularity (~1 ms) costs nothing.
   */
  burst?: number;
  /** Milliseconds from any origin (default `performance.now()`). */
  now?: () => number;
  /** Waits `ms` milliseconds, or rejects with the signal's reason when it aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export class RateLimiter {
  readonly bytesPerSecond: number;
  readonly burst: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private tokens: number;
  private last: number;
  private queue: Promise<void> = Promise.resolve();

  constructor(options: RateLimiterOptions) {
    if (!(options.bytesPerSecond > 0) || !Number.isFinite(options.bytesPerSecond)) throw new RangeError(`a rate limit must be a positive number of bytes per second, not ${options.bytesPerSecond}`);
    this.bytesPerSecond = options.bytesPerSecond;
    this.burst = options.burst ?? Math.max(64 * 1024, Math.floor(options.bytesPerSecond / 4));
    if (!(this.burst > 0)) throw new RangeError('a rate limiter burst must be positive');
    this.now = options.now ?? (() => performance.now());
    this.sleep = options.sleep ?? sleepFor;
    this.tokens = this.burst;
    this.last = this.now();
  }

  /**
   * Spends `bytes` tokens; resolves once the bucket is out of debt (at once when it had
   * them). Rejects with `signal.reason` when the signal aborts while waiting.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(() => this.spend(bytes, signal));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async spend(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    this.refill();
    this.tokens -= bytes;
    if (this.tokens < 0) {
      await this.sleep((-this.tokens / this.bytesPerSecond) * 1000, signal);
      this.refill();
    }
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
  }
}

function sleepFor(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.ceil(ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
