import { isCofferError } from '../../errors/index.js';

/**
 * What an NBD server's `onClientError` hears (a client that broke the protocol or vanished,
 * a device read that failed and was answered with EIO: a damaged chunk under a booting guest),
 * as log lines an administrator can act on. A guest retries a failing read many times, so one
 * distinct message is written at most once per `intervalMs`; the next line of it, or
 * {@link flush} when the server stops, says how many were held back.
 */
export class ClientErrorLog {
  private readonly seen = new Map<string, { lastAt: number; held: number }>();

  constructor(
    private readonly write: (line: string) => void,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  report(error: unknown): void {
    const message = describe(error);
    const at = this.now();
    const entry = this.seen.get(message);
    if (entry !== undefined && at - entry.lastAt < this.intervalMs) {
      entry.held += 1;
      return;
    }
    this.write(entry !== undefined && entry.held > 0 ? `${message} (and ${entry.held} more like it since the last report)` : message);
    this.seen.set(message, { lastAt: at, held: 0 });
  }

  /** Writes how many of each message were held back since its last line. */
  flush(): void {
    for (const [message, entry] of this.seen) {
      if (entry.held > 0) this.write(`${message} (${entry.held} more like it since the last report)`);
      entry.held = 0;
    }
  }
}

function describe(error: unknown): string {
  const text = (error as Error)?.message ?? String(error);
  return `NBD client: ${isCofferError(error) ? `${text} (${error.code})` : text}`;
}
