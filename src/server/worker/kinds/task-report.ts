/**
 * What a task of a kind other than `backup` reports: one line for people, warnings, named
 * figures, and the kind's own detail. Stored as the task's `report` (JSON) when it ends, and
 * while it runs for the kinds that have something to show then (an instant recovery's NBD
 * URIs and QEMU command line).
 */
export interface TaskReport {
  /** One line: what the task did, e.g. `restored 2 disks (3.0 GiB) to /srv/restore/web1`. */
  summary: string;
  /** Things that did not stop the task but deserve a look; any makes the task end as `warning`. */
  warnings: string[];
  /** Named numbers: bytes, counts, durations in ms. */
  figures: Record<string, number>;
  /** The kind's own detail (JSON): paths written, the verify report, the NBD exports… */
  detail: Record<string, unknown>;
}

/** What a kind's code gets from the worker process it runs in. */
export interface KindContext {
  /** Aborted on cancel, SIGTERM, or when the task runner goes away. */
  signal: AbortSignal;
  log(line: string, level?: 'info' | 'warning' | 'error'): void;
  /** Done of total (bytes or steps); the worker spaces the messages. */
  progress(done: number, total: number): void;
  /** A report while running (replaces the previous one); the task's result keeps the last. */
  report(report: TaskReport): void;
}
