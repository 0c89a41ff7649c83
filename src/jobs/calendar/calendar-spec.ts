/**
 * A calendar event compiled to sets of allowed values, one per field of the local wall-clock
 * time, and the search for the next wall-clock time that matches it. Both parsers (systemd /
 * Proxmox calendar events and cron expressions) produce this; nothing here knows time zones:
 * the search runs on wall milliseconds (see time-zone.ts).
 */

/** The first year a schedule can name (systemd's lower bound too). */
export const MIN_YEAR = 1970;
/** The last year a schedule can name and the end of every search (systemd's bound too). */
export const MAX_YEAR = 2199;

/**
 * The allowed values of each field. Each set is indexed by the value itself (`months[1]` is
 * January, `weekdays[0]` Sunday, `years[2026]`); a non-zero entry allows the value.
 */
export interface CalendarSpec {
  readonly years: Uint8Array;
  readonly months: Uint8Array;
  /** Days counted from the start of the month, 1..31. */
  readonly days: Uint8Array;
  /** Days counted from the end of the month: `lastDays[1]` is the last day (systemd's `~`). */
  readonly lastDays: Uint8Array;
  /** 0 = Sunday … 6 = Saturday. */
  readonly weekdays: Uint8Array;
  readonly hours: Uint8Array;
  readonly minutes: Uint8Array;
  readonly seconds: Uint8Array;
  /**
   * How the day of the month and the weekday combine: `all` (systemd: both must match) or
   * `either` (cron, when both fields are restricted: one of them is enough).
   */
  readonly dayRule: 'all' | 'either';
}

/** A set with every value from `min` to `max` allowed (indexed by value, so `max + 1` long). */
export function fullSet(min: number, max: number): Uint8Array {
  const set = new Uint8Array(max + 1);
  set.fill(1, min);
  return set;
}

/** A set allowing only `values`. */
export function setOf(max: number, ...values: number[]): Uint8Array {
  const set = new Uint8Array(max + 1);
  for (const value of values) set[value] = 1;
  return set;
}

const DAY_MS = 86_400_000;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function dayMatches(spec: CalendarSpec, year: number, month: number, day: number, monthLength: number): boolean {
  const byDate = spec.days[day] === 1 || spec.lastDays[monthLength + 1 - day] === 1;
  const weekday = (Math.floor(Date.UTC(year, month - 1, day) / DAY_MS) + 4) % 7; // 1970-01-01 was a Thursday
  const byWeekday = spec.weekdays[weekday] === 1;
  return spec.dayRule === 'all' ? byDate && byWeekday : byDate || byWeekday;
}

/** The smallest allowed value in `set` from `from` to `max`, or undefined. */
function firstFrom(set: Uint8Array, from: number, max: number): number | undefined {
  for (let value = from; value <= max; value++) if (set[value] === 1) return value;
  return undefined;
}

/**
 * The first wall-clock time at or after `fromWall` (wall milliseconds, whole seconds) that the
 * spec matches, or undefined when none does up to the end of {@link MAX_YEAR}.
 *
 * Field by field from the year down: a field with no allowed value left moves the field above
 * it on by one and restarts the fields below at their minimum. Every step moves forward and
 * the year is bounded, so the search always ends (an event such as `*-02-30` ends with
 * undefined after at most a few steps per year).
 */
export function nextMatchingWall(spec: CalendarSpec, fromWall: number): number | undefined {
  let at = new Date(fromWall);
  let year = at.getUTCFullYear();
  let month = at.getUTCMonth() + 1;
  let day = at.getUTCDate();
  let hour = at.getUTCHours();
  let minute = at.getUTCMinutes();
  let second = at.getUTCSeconds();
  const restartAt = (wall: number): void => {
    at = new Date(wall);
    year = at.getUTCFullYear();
    month = at.getUTCMonth() + 1;
    day = at.getUTCDate();
    hour = at.getUTCHours();
    minute = at.getUTCMinutes();
    second = at.getUTCSeconds();
  };
  if (year < MIN_YEAR) restartAt(Date.UTC(MIN_YEAR, 0, 1));
  while (year <= MAX_YEAR) {
    if (spec.years[year] !== 1) {
      restartAt(Date.UTC(year + 1, 0, 1));
      continue;
    }
    const nextMonth = firstFrom(spec.months, month, 12);
    if (nextMonth === undefined) {
      restartAt(Date.UTC(year + 1, 0, 1));
      continue;
    }
    if (nextMonth !== month) restartAt(Date.UTC(year, nextMonth - 1, 1));
    const monthLength = daysInMonth(year, month);
    let nextDay: number | undefined;
    for (let candidate = day; candidate <= monthLength; candidate++) {
      if (dayMatches(spec, year, month, candidate, monthLength)) {
        nextDay = candidate;
        break;
      }
    }
    if (nextDay === undefined) {
      restartAt(Date.UTC(year, month, 1));
      continue;
    }
    if (nextDay !== day) restartAt(Date.UTC(year, month - 1, nextDay));
    const nextHour = firstFrom(spec.hours, hour, 23);
    if (nextHour === undefined) {
      restartAt(Date.UTC(year, month - 1, day + 1));
      continue;
    }
    if (nextHour !== hour) restartAt(Date.UTC(year, month - 1, day, nextHour));
    const nextMinute = firstFrom(spec.minutes, minute, 59);
    if (nextMinute === undefined) {
      restartAt(Date.UTC(year, month - 1, day, hour + 1));
      continue;
    }
    if (nextMinute !== minute) restartAt(Date.UTC(year, month - 1, day, hour, nextMinute));
    const nextSecond = firstFrom(spec.seconds, second, 59);
    if (nextSecond === undefined) {
      restartAt(Date.UTC(year, month - 1, day, hour, minute + 1));
      continue;
    }
    return Date.UTC(year, month - 1, day, hour, minute, nextSecond);
  }
  return undefined;
}
