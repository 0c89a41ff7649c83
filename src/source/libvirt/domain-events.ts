/**
 * A domain's events as `virsh event --domain D --all --loop` prints them, one line each
 * (libvirt 9.0's tools/virsh-domain-event.c; checked here with a session libvirtd):
 *
 *     event 'lifecycle' for domain 'web01': Suspended Paused
 *     event 'io-error' for domain 'web01':  () pause
 *     event 'io-error-reason' for domain 'web01':  () pause due to enospc
 *     event 'lifecycle' for domain 'web01': Suspended I/O Error
 *     event 'job-completed' for domain 'web01':
 *     \toperation: 9
 *     \terrmsg: Operation canceled
 *     event 'block-job-2' for domain 'web01': Backup for vda canceled
 *
 * Each I/O error comes twice, `io-error` then `io-error-reason` (which adds `due to REASON`:
 * `enospc`, `eio`, …; older libvirt printed it as `io-error` too); the detail is `PATH (ALIAS)
 * ACTION`, the action `pause`, `report` or `none`. While a backup job runs, the path and
 * alias are empty: QEMU's failing node is the job's filter, which libvirt cannot name. A
 * job-completed's parameters follow on lines that start with a tab (operation 9 is a backup).
 * Lines are flushed as events come.
 */
import { virshStream, type Virsh } from './virsh.js';

/** One event. */
export interface DomainEvent {
  /** `lifecycle`, `io-error`, `io-error-reason`, `job-completed`, `block-job-2`… */
  type: string;
  /** What follows the colon ("" when nothing does). */
  detail: string;
  /** The parameter lines that followed (a job-completed's `operation`, `errmsg`…), by name. */
  params: Record<string, string>;
}

/** An `io-error` event's detail. */
export interface DomainIoError {
  /** The image path QEMU failed on. */
  path: string;
  /** The device alias (`virtio-disk1`). */
  alias: string;
  action: 'pause' | 'report' | 'none' | 'unknown';
  /** `enospc`, `eio`…, when the event says. */
  reason?: string;
}

const EVENT_LINE = /^event '([^']+)' for domain '.*?'(?: disk [^:]*)?(?::\s?(.*))?$/;

/** The event a line of `virsh event` starts (its parameters still empty), or undefined (a parameter line, a blank). */
export function parseDomainEventLine(line: string): DomainEvent | undefined {
  const match = EVENT_LINE.exec(line.trimEnd());
  if (match === null) return undefined;
  return { type: match[1] as string, detail: match[2] ?? '', params: {} };
}

/** How long an event waits for parameter lines after its last line (virsh prints an event and its parameters in one write). */
export const PARAMS_WAIT_MS = 20;

/**
 * Turns `virsh event` lines into events with their parameters: an event is passed on when
 * the next event starts, at {@link flush}, or (through the caller's timer) PARAMS_WAIT_MS
 * after its last line.
 */
export class EventLineReader {
  private pending: DomainEvent | undefined;

  constructor(private readonly onEvent: (event: DomainEvent) => void) {}

  /** One line; true when an event waits for more lines (the caller flushes it soon). */
  feed(line: string): boolean {
    const event = parseDomainEventLine(line);
    if (event !== undefined) {
      this.flush();
      this.pending = event;
    } else if (this.pending !== undefined) {
      const param = /^\t([^:]+):\s?(.*)$/.exec(line.trimEnd());
      if (param !== null) this.pending.params[param[1] as string] = param[2] as string;
    }
    return this.pending !== undefined;
  }

  flush(): void {
    const event = this.pending;
    this.pending = undefined;
    if (event !== undefined) this.onEvent(event);
  }
}

/** An io-error event's detail, or undefined when it does not read as one. */
export function parseIoErrorDetail(detail: string): DomainIoError | undefined {
  const match = /^(.*) \(([^()]*)\) (pause|report|none|unknown)(?: due to (.+))?$/.exec(detail);
  if (match === null) return undefined;
  return { path: match[1] as string, alias: match[2] as string, action: match[3] as DomainIoError['action'], ...(match[4] !== undefined ? { reason: match[4] } : {}) };
}

/**
 * Listens to one domain's events until {@link stop}. Registering takes virsh a moment after
 * the start: events before it are missed, so what matters is also checked another way (the
 * backup job's presence, the domain's state); a listener that ends on its own is replaced by
 * a poll of the domain's state ({@link DomainEventWatch.pollPausedByIoError}).
 */
export class DomainEventWatch {
  private stopped = false;
  private poll: NodeJS.Timeout | undefined;

  private constructor(private readonly stream: { stop(): void; exited: Promise<string> }) {}

  /**
   * `onLost` is told when the listener ends on its own (libvirtd restarted, virsh killed):
   * from then on nothing more is heard, and the caller falls back to {@link pollPausedByIoError}.
   */
  static start(virsh: Virsh, domain: string, onEvent: (event: DomainEvent) => void, onLost?: (reason: string) => void): DomainEventWatch {
    const reader = new EventLineReader(onEvent);
    let timer: NodeJS.Timeout | undefined;
    const watch = new DomainEventWatch(
      virshStream(virsh, ['event', '--domain', domain, '--all', '--loop'], (line) => {
        clearTimeout(timer);
        if (reader.feed(line)) {
          timer = setTimeout(() => {
            if (!watch.stopped) reader.flush(); // nothing is passed on after stop()
          }, PARAMS_WAIT_MS);
        }
      }),
    );
    void watch.stream.exited.then((reason) => {
      clearTimeout(timer);
      if (watch.stopped) return;
      reader.flush();
      onLost?.(reason);
    });
    return watch;
  }

  /**
   * What the lost listener would have said of a pause, from the domain's state instead: every
   * `everyMs`, `virsh domstate --reason`; `onPaused` is told when it reads `paused (I/O error)`
   * (QEMU paused the domain on a failed write), until it answers true (it acted on it). Ends
   * with {@link stop}.
   */
  pollPausedByIoError(virsh: Virsh, domain: string, onPaused: () => boolean, everyMs = STATE_POLL_MS): void {
    if (this.stopped || this.poll !== undefined) return;
    let asking = false;
    this.poll = setInterval(() => {
      if (asking) return;
      asking = true;
      void virsh.run(['domstate', '--reason', domain]).then(
        (state) => {
          if (this.stopped || !/^paused \(I\/O error\)/i.test(state.trim())) return;
          if (onPaused()) clearInterval(this.poll);
        },
        () => undefined, // the daemon restarting: asked again at the next tick
      ).finally(() => (asking = false));
    }, everyMs);
    this.poll.unref();
  }

  /** Idempotent. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.poll);
    this.stream.stop();
  }
}

/** How often the domain's state is read once its event listener is lost. */
export const STATE_POLL_MS = 500;
