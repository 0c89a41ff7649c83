/**
 * Login rate limiting, per user name and per client address: after
 * {@link FREE_FAILURES} failures in a row, each further attempt must wait twice as long as the
 * last (1 s, 2 s, 4 s … up to 15 minutes). A success clears the user's and the address's
 * counts. Kept in memory: a restart forgives, which is fine for the threat (online guessing),
 * and several servers (#10) each slow a guesser down on their own.
 */
export const FREE_FAILURES = 5;
const MAX_DELAY_MS = 15 * 60_000;
const FORGET_AFTER_MS = 60 * 60_000;

interface Record {
  failures: number;
  blockedUntil: number;
  last: number;
}

export class LoginThrottle {
  private readonly records = new Map<string, Record>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Milliseconds to wait before this user may try from this address (0: go ahead). */
  waitFor(user: string, address: string): number {
    const now = this.now();
    return Math.max(0, ...[`user:${user}`, `address:${address}`].map((key) => (this.records.get(key)?.blockedUntil ?? 0) - now));
  }

  failed(user: string, address: string): void {
    const now = this.now();
    for (const key of [`user:${user}`, `address:${address}`]) {
      const record = this.records.get(key) ?? { failures: 0, blockedUntil: 0, last: now };
      record.failures += 1;
      record.last = now;
      if (record.failures >= FREE_FAILURES) record.blockedUntil = now + Math.min(MAX_DELAY_MS, 1000 * 2 ** (record.failures - FREE_FAILURES));
      this.records.set(key, record);
    }
    this.forgetOld(now);
  }

  succeeded(user: string, address: string): void {
    this.records.delete(`user:${user}`);
    this.records.delete(`address:${address}`);
  }

  private forgetOld(now: number): void {
    if (this.records.size < 10_000) return;
    for (const [key, record] of this.records) if (now - record.last > FORGET_AFTER_MS && record.blockedUntil < now) this.records.delete(key);
  }
}
