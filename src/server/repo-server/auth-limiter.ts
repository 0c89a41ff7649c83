/**
 * Slows down token guessing: a client address that presented `maxFailures` bad tokens within
 * `windowMs` is refused (429, with Retry-After) until the oldest of them leaves the window,
 * before its token is even looked at. Good tokens are never counted. Memory is bounded:
 * at most `maxAddresses` addresses are tracked (the oldest forgotten first).
 *
 * Defaults: 10 failures a minute is far above what a misconfigured agent retrying produces
 * (one per attempt, 6 attempts) and far below what guessing a 256-bit secret would need.
 */
export class AuthFailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly options: { maxFailures: number; windowMs: number; maxAddresses: number } = { maxFailures: 10, windowMs: 60_000, maxAddresses: 10_000 },
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds this address must still wait, or 0 when it may try. */
  blockedFor(address: string): number {
    const recent = this.recent(address);
    if (recent.length < this.options.maxFailures) return 0;
    return Math.max(1, (recent[0] as number) + this.options.windowMs - this.now());
  }

  /** Records a refused token from this address. */
  fail(address: string): void {
    const recent = this.recent(address);
    recent.push(this.now());
    this.failures.delete(address);
    this.failures.set(address, recent.slice(-this.options.maxFailures));
    while (this.failures.size > this.options.maxAddresses) this.failures.delete(this.failures.keys().next().value as string);
  }

  private recent(address: string): number[] {
    const since = this.now() - this.options.windowMs;
    return (this.failures.get(address) ?? []).filter((time) => time > since);
  }
}
