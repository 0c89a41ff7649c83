/**
 * Wall-clock time in an IANA time zone, computed with the platform's Intl data (no
 * dependency): the offset of a zone at an instant, and the instants a local wall-clock time
 * names (none in a spring-forward gap, two in a fall-back overlap).
 *
 * A wall-clock time is carried as "wall milliseconds": the local date and time read as if it
 * were UTC (Date.UTC of the local fields), so calendar arithmetic on it is plain UTC
 * arithmetic and never meets a DST transition.
 */
import { CofferError } from '../../errors/index.js';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** A time zone that can convert between instants and wall-clock times. */
export interface TimeZone {
  /** The IANA name as given (e.g. `Europe/Berlin`, `UTC`). */
  readonly name: string;
  /** The local wall-clock time at `instantMs`, as wall milliseconds (whole seconds). */
  wallAt(instantMs: number): number;
  /**
   * The instants (UTC milliseconds, ascending) at which the local clock reads `wallMs`:
   * none when the wall time falls in a spring-forward gap, two in a fall-back overlap.
   * Assumes at most one transition within a day of `wallMs` (true of every real zone).
   */
  instantsOf(wallMs: number): number[];
}

const zones = new Map<string, TimeZone>();

/**
 * The time zone named `name` (an IANA name such as `Europe/Berlin`, or `UTC`).
 * @throws CofferError E_USAGE when the platform knows no such zone.
 */
export function timeZone(name: string): TimeZone {
  const known = zones.get(name);
  if (known !== undefined) return known;
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch (cause) {
    throw new CofferError('E_USAGE', `unknown time zone "${name}" (use an IANA name such as Europe/Berlin, or UTC)`, { cause });
  }
  const zone = new IntlTimeZone(name, format);
  zones.set(name, zone);
  return zone;
}

class IntlTimeZone implements TimeZone {
  /** Offsets are constant over long stretches: remember them per minute asked. */
  private readonly offsetCache = new Map<number, number>();

  constructor(
    readonly name: string,
    private readonly format: Intl.DateTimeFormat,
  ) {}

  wallAt(instantMs: number): number {
    const seconds = Math.floor(instantMs / 1000) * 1000;
    return seconds + this.offsetAt(seconds);
  }

  instantsOf(wallMs: number): number[] {
    const before = this.offsetAt(wallMs - DAY_MS);
    const after = this.offsetAt(wallMs + DAY_MS);
    const found: number[] = [];
    for (const offset of before === after ? [before] : [before, after]) {
      const instant = wallMs - offset;
      if (this.offsetAt(instant) === offset && !found.includes(instant)) found.push(instant);
    }
    return found.sort((a, b) => a - b);
  }

  /** Milliseconds to add to UTC to get the local wall clock at `instantMs`. */
  private offsetAt(instantMs: number): number {
    const minute = Math.floor(instantMs / MINUTE_MS);
    const cached = this.offsetCache.get(minute);
    if (cached !== undefined) return cached;
    const fields: Record<string, number> = {};
    for (const part of this.format.formatToParts(new Date(minute * MINUTE_MS))) {
      if (part.type !== 'literal') fields[part.type] = Number(part.value);
    }
    // Schedules live in years 1970..2199, where Date.UTC reads the year as given.
    const wall = Date.UTC(fields.year ?? 1970, (fields.month ?? 1) - 1, fields.day ?? 1, fields.hour ?? 0, fields.minute ?? 0, fields.second ?? 0);
    const offset = wall - minute * MINUTE_MS;
    if (this.offsetCache.size > 100_000) this.offsetCache.clear();
    this.offsetCache.set(minute, offset);
    return offset;
  }
}
