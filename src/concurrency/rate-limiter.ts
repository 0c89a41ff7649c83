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
 * The rate can change while the bucket is used (`setRate`: a worker's share of a bandwidth rule,
 * updated whenever the tasks under the rule or a time-of-day rule change), and can be
 * unlimited (undefined). The clock and the sleep are injected (the core never reads the clock
 * on its own); the defaults are `performance.now()` and `setTimeout`.
 */
export interface RateLimiterOptions {
  /** The average rate, in bytes per second (> 0); undefined: unlimited until {@link RateLimiter.setRate} sets one. */
  bytesPerSecond: number | undefined;
  /** How many bytes may pass at once after an idle spell, fixed. Default: {@link burstSeconds} of the rate. */
  burst?: number;
  /**
   * Without a fixed burst: how many seconds of the rate may pass at once, at least 64 KiB.
   * Default a quarter second — small enough that a burst cannot blow a limit's purpose, large
   * enough that timer granularity (~1 ms) costs nothing.
   */
  burstSeconds?: number;
  /** Milliseconds from any origin (default `performance.now()`). */
  now?: () => number;
  /** Waits `ms` milliseconds, or rejects with the signal's reason when it aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

const MIN_BURST = 64 * 1024;

export class RateLimiter {
  private rate: number | undefined;
  private readonly fixedBurst: number | undefined;
  private readonly burstSeconds: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private tokens: number;
  private last: number;
  private queue: Promise<void> = Promise.resolve();
  /** Ends the current wait early when the rate changes (the wait is planned again). */
  private waking: AbortController | undefined;

  constructor(options: RateLimiterOptions) {
    checkRate(options.bytesPerSecond);
    if (options.burst !== undefined && !(options.burst > 0)) throw new RangeError('a rate limiter burst must be positive');
    this.rate = options.bytesPerSecond;
    this.fixedBurst = options.burst;
    this.burstSeconds = options.burstSeconds ?? 0.25;
    this.now = options.now ?? (() => performance.now());
    this.sleep = options.sleep ?? sleepFor;
    this.last = this.now();
    this.tokens = this.burst;
  }

  /** The rate now, in bytes per second; undefined when unlimited. */
  get bytesPerSecond(): number | undefined {
    return this.rate;
  }

  /** How many bytes may pass at once after an idle spell (infinite while unlimited). */
  get burst(): number {
    if (this.fixedBurst !== undefined) return this.fixedBurst;
    return this.rate === undefined ? Infinity : Math.max(MIN_BURST, Math.floor(this.rate * this.burstSeconds));
  }

  /**
   * Changes the rate (undefined: unlimited): the tokens accrued so far count at the old rate,
   * those from now on at the new one, and a waiting take plans its wait again.
   */
  setRate(rate: number | undefined): void {
    checkRate(rate);
    this.refill();
    this.rate = rate;
    if (this.tokens > this.burst) this.tokens = this.burst;
    this.waking?.abort();
  }

  /**
   * Spends `bytes` tokens; resolves once the bucket is out of debt (at once when it had
   * them, or while unlimited). Rejects with `signal.reason` when the signal aborts while waiting.
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
    while (this.tokens < 0 && this.rate !== undefined) {
      await this.wait((-this.tokens / this.rate) * 1000, signal);
      this.refill();
    }
    if (this.rate === undefined) this.tokens = 0; // unlimited: no debt carried into a later limit
  }

  /** Sleeps `ms`, or less when the rate changes meanwhile. */
  private async wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const waking = new AbortController();
    this.waking = waking;
    try {
      await this.sleep(ms, signal === undefined ? waking.signal : AbortSignal.any([signal, waking.signal]));
    } catch (error) {
      if (!waking.signal.aborted || signal?.aborted) throw error;
    } finally {
      if (this.waking === waking) this.waking = undefined;
    }
  }

  private refill(): void {
    const now = this.now();
    if (this.rate !== undefined) this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}

function checkRate(rate: number | undefined): void {
  if (rate !== undefined && (!(rate > 0) || !Number.isFinite(rate))) throw new RangeError(`a rate limit must be a positive number of bytes per second, not ${rate}`);
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
