import { randomBytes } from 'node:crypto';
import type { BackendEntry } from '../../repo/index.js';

/** One page of a listing and the cursor of the next (null: the listing is complete). */
export interface ListPage {
  entries: BackendEntry[];
  cursor: string | null;
}

interface Session {
  owner: string;
  iterator: AsyncIterator<BackendEntry>;
  /** The page number the next new request asks for. */
  next: number;
  /** The last page served, for a retry of the request that fetched it. */
  last: ListPage | undefined;
  touched: number;
  busy: boolean;
}

/**
 * Paginated listings over a backend's unordered listing (Backend.list promises no order, so
 * a stateless "keys after X" cursor would mean re-listing everything for each page). The
 * first request starts the backend's listing and keeps its iterator under a random session
 * id; each page answers a cursor `<session id>.<page number>` for the next. A request for the
 * page just served again (its answer was lost and the client retried) gets the same page.
 * A session is bound to the token name that started it, and ends `idleMs` after its last request (a client that comes back later gets 410 and starts over).
 */
export class ListSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly idleMs = 5 * 60_000, private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(idleMs, 60_000));
    this.sweeper.unref();
  }

  /** The first page of a new listing. */
  async start(owner: string, entries: AsyncIterable<BackendEntry>, limit: number): Promise<ListPage> {
    const id = randomBytes(12).toString('base64url');
    const session: Session = { owner, iterator: entries[Symbol.asyncIterator](), next: 1, last: undefined, touched: this.now(), busy: false };
    this.sessions.set(id, session);
    return this.page(id, session, limit);
  }

  /** The page a cursor names; `'gone'` when the session expired or the cursor is not one of this owner's. */
  async continue(owner: string, cursor: string, limit: number): Promise<ListPage | 'gone' | 'busy'> {
    const match = /^([A-Za-z0-9_-]{16})\.(\d{1,9})$/.exec(cursor);
    const session = match === null ? undefined : this.sessions.get(match[1] as string);
    if (match === null || session === undefined || session.owner !== owner) return 'gone';
    const wanted = Number(match[2]);
    session.touched = this.now();
    if (wanted === session.next - 1 && session.last !== undefined) return session.last;
    if (wanted !== session.next) return 'gone';
    if (session.busy) return 'busy';
    return this.page(match[1] as string, session, limit);
  }

  /** Stops every listing (server shutdown). */
  close(): void {
    clearInterval(this.sweeper);
    for (const session of this.sessions.values()) void session.iterator.return?.();
    this.sessions.clear();
  }

  private async page(id: string, session: Session, limit: number): Promise<ListPage> {
    session.busy = true;
    try {
      const entries: BackendEntry[] = [];
      let done = false;
      while (entries.length < limit) {
        const step = await session.iterator.next();
        if (step.done === true) {
          done = true;
          break;
        }
        entries.push(step.value);
      }
      const page: ListPage = { entries, cursor: done ? null : `${id}.${session.next + 1}` };
      session.next += 1;
      session.last = page;
      session.touched = this.now();
      return page; // a finished session stays until swept, so a retry of its last page is answered

    } catch (error) {
      this.sessions.delete(id);
      throw error;
    } finally {
      session.busy = false;
    }
  }

  private sweep(): void {
    const cutoff = this.now() - this.idleMs;
    for (const [id, session] of this.sessions) {
      if (session.touched < cutoff && !session.busy) {
        void session.iterator.return?.();
        this.sessions.delete(id);
      }
    }
  }
}
