import { isCofferError } from '../../errors/index.js';

/**
 * What an NBD server's `onClientError` hears (a client that broke the protocol or vanished,
 * a device read that failed and was answered with EIO: a damaged chunk under a booting guest),
 * as log lines an administrator can act on. A guest retries a failing read many times, so one
 * distinct message is written at most once per `intervalMs`; the next line of it says how
 * many were held back, and so does any report after its interval ends, or {@link flush} when
 * the server stops. At most {@link MAX_DISTINCT} messages are remembered at once (a guest
 * reading a damaged disk everywhere makes one message per chunk): beyond, one line says how
 * many distinct ones were held back.
 */
export class ClientErrorLog {
  /** Messages written within their interval, in the order first written. */
  private readonly seen = new Map<string, { lastAt: number; held: number }>();
  private overflow = 0;

  constructor(
    private readonly write: (line: string) => void,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  report(error: unknown): void {
    const message = describe(error);
    const at = this.now();
    this.sweep(at, message);
    const entry = this.seen.get(message);
    if (entry !== undefined && at - entry.lastAt < this.intervalMs) {
      entry.held += 1;
      return;
    }
    if (entry === undefined && this.seen.size >= MAX_DISTINCT) {
      this.overflow += 1;
      return;
    }
    this.write(entry !== undefined && entry.held > 0 ? `${message} (and ${entry.held} more like it since the last report)` : message);
    this.seen.set(message, { lastAt: at, held: 0 });
  }

  /**
   * Forgets the messages whose interval has ended (but `current`, which its report settles),
   * writing how many of each were held back.
   */
  private sweep(at: number, current: string): void {
    for (const [message, entry] of this.seen) {
      if (message === current || at - entry.lastAt < this.intervalMs) continue;
      if (entry.held > 0) this.write(`${message} (and ${entry.held} more like it since the last report)`);
      this.seen.delete(message);
    }
    if (this.overflow > 0 && this.seen.size < MAX_DISTINCT) {
      this.write(`NBD client: ${this.overflow} more errors of other kinds were not written (more than ${MAX_DISTINCT} distinct ones within ${this.intervalMs / 1000} s)`);
      this.overflow = 0;
    }
  }

  /** Writes how many of each message were held back since its last line. */
  flush(): void {
    for (const [message, entry] of this.seen) {
      if (entry.held > 0) this.write(`${message} (${entry.held} more like it since the last report)`);
      entry.held = 0;
    }
    if (this.overflow > 0) this.write(`NBD client: ${this.overflow} more errors of other kinds were not written`);
    this.overflow = 0;
  }
}

/** How many distinct messages are remembered at once. */
export const MAX_DISTINCT = 256;

function describe(error: unknown): string {
  const text = (error as Error)?.message ?? String(error);
  return `NBD client: ${isCofferError(error) ? `${text} (${error.code})` : text}`;
}
