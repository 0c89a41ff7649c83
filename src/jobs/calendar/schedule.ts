/**
 * A schedule: a calendar event or cron expression bound to a time zone, answering "when is
 * the next firing after this instant?".
 *
 * Time zones and daylight saving time follow systemd (checked against `systemd-analyze
 * calendar`, systemd 252): the event is matched against the local wall-clock time, which is
 * walked forward from the wall-clock time at `after`.
 * - A local time that does not exist (the hour skipped when clocks spring forward) does not
 *   fire that day: `02:30` in Europe/Berlin does not run on the last Sunday of March.
 * - A local time that happens twice (the hour repeated when clocks fall back) fires once, at
 *   its first occurrence (the second only if `after` already lies in the repeated hour): the
 *   repeated hour is not walked twice, so `*:0/30` fires at 02:00 and 02:30 summer time, then
 *   at 03:00 winter time.
 */
import { CofferError } from '../../errors/index.js';
import { nextMatchingWall, type CalendarSpec } from './calendar-spec.js';
import { parseCalendarEvent } from './parse-calendar-event.js';
import { looksLikeCron, parseCron } from './parse-cron.js';
import { timeZone as lookUpTimeZone, type TimeZone } from './time-zone.js';

/** A parsed schedule. Immutable; safe to share. */
export interface Schedule {
  /** The text it was parsed from. */
  readonly text: string;
  /** The IANA time zone its times are read in. */
  readonly timeZone: string;
  /** `calendar` (systemd / Proxmox calendar event) or `cron`. */
  readonly syntax: 'calendar' | 'cron';
  /** The first firing strictly after `after` (to the second), or undefined if it never fires again (before 2200). */
  next(after: Date): Date | undefined;
  /** The next `count` firings after `after` (fewer if the event ends). */
  preview(after: Date, count: number): Date[];
}

/** Options of {@link parseSchedule}. */
export interface ScheduleOptions {
  /**
   * The IANA time zone the schedule's times are in, e.g. `Europe/Berlin` or `UTC`. A zone
   * written at the end of a calendar event (`daily Europe/Paris`) takes precedence.
   */
  readonly timeZone: string;
}

const MINUTE_MS = 60_000;

/**
 * Parses a calendar event (`mon..fri 22:00`, `sat *-1..7 03:00`, `*:0/15`, `daily`) or a
 * five-field cron expression (`0 22 * * 1-5`).
 * @example parseSchedule('mon..fri 22:00', { timeZone: 'Europe/Berlin' }).next(new Date())
 * @throws CofferError E_USAGE for bad syntax (with the position) or an unknown time zone.
 */
export function parseSchedule(text: string, options: ScheduleOptions): Schedule {
  if (looksLikeCron(text)) return new CalendarSchedule(text, 'cron', parseCron(text), lookUpTimeZone(options.timeZone));
  const event = parseCalendarEvent(text);
  return new CalendarSchedule(text, 'calendar', event.spec, lookUpTimeZone(event.timeZone ?? options.timeZone));
}

class CalendarSchedule implements Schedule {
  constructor(
    readonly text: string,
    readonly syntax: 'calendar' | 'cron',
    private readonly spec: CalendarSpec,
    private readonly zone: TimeZone,
  ) {}

  get timeZone(): string {
    return this.zone.name;
  }

  next(after: Date): Date | undefined {
    const afterMs = after.getTime();
    if (!Number.isFinite(afterMs)) throw new CofferError('E_USAGE', 'the time to compute the next firing from is not a valid date');
    let from = this.zone.wallAt(afterMs) + 1000;
    for (;;) {
      const wall = nextMatchingWall(this.spec, from);
      if (wall === undefined) return undefined;
      const instants = this.zone.instantsOf(wall);
      if (instants.length === 0) {
        // In a spring-forward gap: skipped. Gaps start and end on whole minutes.
        from = Math.floor(wall / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
        continue;
      }
      const instant = instants.find((candidate) => candidate > afterMs);
      if (instant !== undefined) return new Date(instant);
      from = wall + 1000;
    }
  }

  preview(after: Date, count: number): Date[] {
    const out: Date[] = [];
    let at = after;
    while (out.length < count) {
      const next = this.next(at);
      if (next === undefined) break;
      out.push(next);
      at = next;
    }
    return out;
  }
}
