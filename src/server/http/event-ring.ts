/**
 * The recent task, run and log events of this server, numbered, in a bounded ring: what lets
 * `GET /events` replay what a client missed while it reconnected (`Last-Event-ID`, sent by
 * EventSource on its own). Ids increase for the life of the process (they restart at 1 with
 * the server: a client holding an id above the newest, or below the oldest kept, is told to
 * read the lists again, see {@link EventRing.since}).
 */
import { EventEmitter } from 'node:events';

/** How many events the ring keeps (about a minute of a busy night: 600 VMs' progress and log lines). */
export const EVENT_RING_SIZE = 2000;

export interface RingEvent {
  id: number;
  type: 'task' | 'run' | 'log';
  data: unknown;
}

export class EventRing {
  /** `event` (RingEvent) for each event as it is recorded. */
  readonly events = new EventEmitter();
  private readonly ring: RingEvent[] = [];
  private lastId = 0;

  constructor(private readonly size = EVENT_RING_SIZE) {
    this.events.setMaxListeners(0);
  }

  record(type: RingEvent['type'], data: unknown): void {
    const event = { id: ++this.lastId, type, data };
    this.ring.push(event);
    if (this.ring.length > this.size) this.ring.shift();
    this.events.emit('event', event);
  }

  /**
   * The events after `lastId`, oldest first; `complete` is false when some of them are no
   * longer kept (or the id is not one of this process's), so the client must re-read the lists.
   */
  since(lastId: number): { events: RingEvent[]; complete: boolean } {
    const oldest = this.ring[0]?.id ?? this.lastId + 1;
    if (!Number.isSafeInteger(lastId) || lastId > this.lastId || lastId < oldest - 1) return { events: [...this.ring], complete: false };
    return { events: this.ring.filter((e) => e.id > lastId), complete: true };
  }
}
