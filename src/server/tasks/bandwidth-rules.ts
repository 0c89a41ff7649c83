/**
 * Bandwidth rules: how many bytes per second all running tasks together may read from their
 * sources, or write to their repositories, constant or at some times of day.
 *
 * A rule's `at` is when it applies: a calendar event matched minute by minute (`mon..fri
 * 8..17:*` is every minute from 08:00 to 17:59 on working days), or the shorthand
 * `DAYS H1-H2` (`mon..fri 8-18`: from H1:00 to H2:00). For each direction the first rule in
 * the list that applies now wins; put time-of-day rules before a constant one. A rule may be
 * scoped to `hosts` and/or `repositories`: then for a task, the first rule that applies now
 * and covers it wins, and the rate is shared by the tasks under that same rule.
 *
 * Sharing: the rule's rate is divided evenly among the tasks under it (each worker gets
 * rate / n as its own token bucket): for a read rule the tasks still reading their sources (a
 * task that read its last block, and only writes its index and manifest, gives its share
 * back), for a write rule every running task. The parent sends every worker its new share
 * when n changes or a rule begins or ends. Chosen over a central bucket granting byte budgets over
 * IPC: no round trip per read, and a worker that dies holds no grant; the cost is that a task
 * still opening its repository does not use its share (measured below 15 % on the test).
 */
import { CofferError } from '../../errors/index.js';
import { parseSchedule, type Schedule } from '../../jobs/index.js';
import type { WorkerRates } from '../worker/index.js';

/** One bandwidth rule. */
export interface BandwidthRule {
  /** `source-read`: bytes read from VMs' disks; `repository-write`: bytes written to repositories. */
  readonly direction: 'source-read' | 'repository-write';
  /** The rate shared by every running task, bytes per second (at least 1024). */
  readonly bytesPerSecond: number;
  /** When it applies (see above); always when absent. */
  readonly at?: string;
  /** The time zone of `at` (default UTC). */
  readonly timeZone?: string;
  /** Only tasks of these hosts (all when absent). */
  readonly hosts?: readonly string[];
  /** Only tasks writing to these repositories (all when absent). */
  readonly repositories?: readonly string[];
}

/** A running task as the scoped rules see it. */
export interface BandwidthSubject {
  readonly host: string;
  readonly repository: string;
  /** Still reading its source (counts under read rules). */
  readonly reading: boolean;
}

/** Rules, parsed once. */
export class BandwidthRules {
  private readonly rules: { rule: BandwidthRule; when: Schedule | undefined }[];

  /** @throws CofferError E_USAGE for a bad rate or time. */
  constructor(rules: readonly BandwidthRule[] = []) {
    this.rules = rules.map((rule) => {
      if (!(rule.bytesPerSecond >= 1024) || !Number.isFinite(rule.bytesPerSecond)) throw new CofferError('E_USAGE', `bandwidth rule ${rule.direction}: give at least 1024 bytes per second, not ${rule.bytesPerSecond}`);
      if (rule.direction !== 'source-read' && rule.direction !== 'repository-write') throw new CofferError('E_USAGE', `bandwidth rule: direction must be source-read or repository-write, not ${String(rule.direction)}`);
      return { rule, when: rule.at === undefined ? undefined : parseSchedule(calendarOf(rule.at), { timeZone: rule.timeZone ?? 'UTC' }) };
    });
  }

  /** The rate of the rule that applies now in that direction, or undefined (unlimited). */
  rateAt(direction: BandwidthRule['direction'], now: Date): number | undefined {
    const minute = Math.floor(now.getTime() / 60_000) * 60_000;
    for (const { rule, when } of this.rules) {
      if (rule.direction !== direction) continue;
      if (when === undefined || when.next(new Date(minute - 1000))?.getTime() === minute) return rule.bytesPerSecond;
    }
    return undefined;
  }

  /**
   * Each task's share now, rules scoped by host and repository: a task falls under the first
   * rule of each direction that applies now and covers it, and that rule's rate is divided
   * among the tasks under it (reading ones for a read rule). Same order as `tasks`.
   */
  sharesAt(now: Date, tasks: readonly BandwidthSubject[]): WorkerRates[] {
    const minute = Math.floor(now.getTime() / 60_000) * 60_000;
    const active = this.rules.filter(({ when }) => when === undefined || when.next(new Date(minute - 1000))?.getTime() === minute).map(({ rule }) => rule);
    const ruleOf = (direction: BandwidthRule['direction'], task: BandwidthSubject) =>
      active.find((rule) => rule.direction === direction && (rule.hosts === undefined || rule.hosts.includes(task.host)) && (rule.repositories === undefined || rule.repositories.includes(task.repository)));
    const reads = tasks.map((t) => ruleOf('source-read', t));
    const writes = tasks.map((t) => ruleOf('repository-write', t));
    return tasks.map((task, i) => {
      const read = reads[i];
      const write = writes[i];
      const readers = read === undefined ? 0 : tasks.filter((t, j) => reads[j] === read && t.reading).length;
      const writers = write === undefined ? 0 : writes.filter((w) => w === write).length;
      return {
        ...(read === undefined ? {} : { sourceRead: read.bytesPerSecond / Math.max(1, readers) }),
        ...(write === undefined ? {} : { repositoryWrite: write.bytesPerSecond / Math.max(1, writers) }),
      };
    });
  }

  /** Whether any rule is scoped to hosts or repositories (the runner then shares per task). */
  get scoped(): boolean {
    return this.rules.some(({ rule }) => rule.hosts !== undefined || rule.repositories !== undefined);
  }

  /** Each task's share now, with `reading` tasks still reading their sources and `running` tasks in all. */
  shareAt(now: Date, reading: number, running: number = reading): WorkerRates {
    const read = this.rateAt('source-read', now);
    const write = this.rateAt('repository-write', now);
    return { ...(read === undefined ? {} : { sourceRead: read / Math.max(1, reading) }), ...(write === undefined ? {} : { repositoryWrite: write / Math.max(1, running) }) };
  }
}

/** `mon..fri 8-18` → `mon..fri 8..17:*`; anything else is taken as a calendar event. */
function calendarOf(at: string): string {
  const hours = /^(.*?)\s*\b(\d{1,2})-(\d{1,2})$/.exec(at.trim());
  if (hours === null) return at;
  const from = Number(hours[2]);
  const to = Number(hours[3]);
  if (!(from < to && to <= 24)) throw new CofferError('E_USAGE', `bandwidth rule at ${JSON.stringify(at)}: the hours ${from}-${to} must run forward within a day`);
  return `${hours[1] ?? ''} ${from}..${to - 1}:*`.trim();
}
