/**
 * Calendar events as systemd.time(7) defines them, with the Proxmox additions:
 *
 *     [WEEKDAYS] [[YEAR-]MONTH-DAY | [YEAR-]MONTH~LASTDAY] [HOUR:MINUTE[:SECOND]] [TIMEZONE]
 *
 * - WEEKDAYS: English names, abbreviated (`mon`) or full (`monday`), any case, in a list with
 *   `,` and ranges with `..` (systemd's older `-` too): `mon..fri`, `sat,sun`. A range may
 *   not wrap (`sat..mon` is refused, as systemd refuses it).
 * - Each date and time component: `*`, a value, a range `a..b`, a repetition `a/n` (a, a+n, …
 *   up to the field's end) or `a..b/n`, and lists of those with `,`. Proxmox also allows `*\/n`
 *   (from the field's first value). Years are 1970..2199; two-digit years are 20xx below 70
 *   and 19xx from 70 (systemd's rule).
 * - `~` counts days from the end of the month: `*-02~03` is the third-last day of February,
 *   `*-*~1..3` the last three days, `~07/1` the 7th-last day and each day after it to the end
 *   (so `mon *-05~07/1` is the last Monday in May), as systemd reads them.
 * - A missing date means every day; a missing time means 00:00:00; a missing second means :00.
 * - Proxmox: a time written without `:` gives the minutes of every hour (`*\/5` every five
 *   minutes, `mon..wed 30/10` at :30, :40 and :50).
 * - Shorthands: minutely, hourly, daily, weekly, monthly, yearly/annually, quarterly,
 *   semiannually/semi-annually (systemd's and Proxmox's list).
 * - TIMEZONE: `UTC` or an IANA name (`Europe/Berlin`) as the last word.
 * Not accepted: fractional seconds (systemd allows them; a backup schedule has no use for them).
 */
import { fullSet, MAX_YEAR, MIN_YEAR, setOf, type CalendarSpec } from './calendar-spec.js';
import { scheduleSyntaxError } from './schedule-syntax-error.js';
import { parseValueList, type FieldSyntax } from './value-list.js';

/** A parsed calendar event: its compiled fields and the time zone written in it, if any. */
export interface ParsedCalendarEvent {
  readonly spec: CalendarSpec;
  readonly timeZone?: string;
}

const SHORTHANDS: Record<string, string> = {
  minutely: '*-*-* *:*:00',
  hourly: '*-*-* *:00:00',
  daily: '*-*-* 00:00:00',
  weekly: 'mon *-*-* 00:00:00',
  monthly: '*-*-01 00:00:00',
  yearly: '*-01-01 00:00:00',
  annually: '*-01-01 00:00:00',
  quarterly: '*-01,04,07,10-01 00:00:00',
  semiannually: '*-01,07-01 00:00:00',
  'semi-annually': '*-01,07-01 00:00:00',
};

const WEEKDAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

function weekdayNumber(word: string): number | undefined {
  const lower = word.toLowerCase();
  const index = WEEKDAY_NAMES.findIndex((name) => lower === name || lower === name.slice(0, 3));
  return index < 0 ? undefined : index;
}

function readYear(word: string): number | undefined {
  if (/^\d{4}$/.test(word)) return Number(word);
  if (/^\d{2}$/.test(word)) return Number(word) + (Number(word) < 70 ? 2000 : 1900);
  return undefined;
}

const YEAR: FieldSyntax = { name: 'year', min: MIN_YEAR, max: MAX_YEAR, rangeSeparator: '..', readValue: readYear };
const MONTH: FieldSyntax = { name: 'month', min: 1, max: 12, rangeSeparator: '..' };
const DAY: FieldSyntax = { name: 'day of the month', min: 1, max: 31, rangeSeparator: '..' };
const HOUR: FieldSyntax = { name: 'hour', min: 0, max: 23, rangeSeparator: '..' };
const MINUTE: FieldSyntax = { name: 'minute', min: 0, max: 59, rangeSeparator: '..' };
const SECOND: FieldSyntax = { name: 'second', min: 0, max: 59, rangeSeparator: '..' };

interface Word {
  readonly text: string;
  readonly offset: number;
}

function words(text: string): Word[] {
  return [...text.matchAll(/\S+/g)].map((match) => ({ text: match[0], offset: match.index ?? 0 }));
}

function isWeekdayList(text: string): boolean {
  return /^[a-z]+((\.\.|-)[a-z]+)?(,[a-z]+((\.\.|-)[a-z]+)?)*,?$/i.test(text) && text.split(/,|\.\.|-/).every((w) => w === '' || weekdayNumber(w) !== undefined);
}

/**
 * Parses a calendar event.
 * @example parseCalendarEvent('mon..fri 22:00') // 22:00:00 on working days
 * @throws CofferError E_USAGE with the position of the first part at fault.
 */
export function parseCalendarEvent(text: string): ParsedCalendarEvent {
  let parts = words(text);
  if (parts.length === 0) throw scheduleSyntaxError(text, 0, 'the schedule is empty');

  let timeZone: string | undefined;
  const last = parts[parts.length - 1] as Word;
  if (parts.length > 1 && /^[a-z]/i.test(last.text) && !isWeekdayList(last.text)) {
    timeZone = last.text;
    parts = parts.slice(0, -1);
  }

  const first = parts[0] as Word;
  const shorthand = SHORTHANDS[first.text.toLowerCase()];
  if (shorthand !== undefined) {
    if (parts.length > 1) throw scheduleSyntaxError(text, (parts[1] as Word).offset, `nothing may follow "${first.text}" but a time zone`);
    const expanded = parseCalendarEvent(shorthand);
    return timeZone === undefined ? { spec: expanded.spec } : { spec: expanded.spec, timeZone };
  }

  // Weekdays: the first word if it starts with a letter; "Wed, Fri" may be split by spaces.
  let weekdays = fullSet(0, 6);
  let index = 0;
  if (/^[a-z]/i.test(first.text)) {
    let list = first.text;
    index = 1;
    while (list.endsWith(',') && index < parts.length && /^[a-z]/i.test((parts[index] as Word).text)) {
      list += (parts[index] as Word).text;
      index++;
    }
    weekdays = parseWeekdays(list.replace(/,$/, ''), text, first.offset);
  }

  let date: Word | undefined;
  let time: Word | undefined;
  for (const word of parts.slice(index)) {
    const isTime = word.text.includes(':') || !/[-~]/.test(word.text);
    if (isTime) {
      if (time !== undefined) throw scheduleSyntaxError(text, word.offset, `a second time "${word.text}"`);
      time = word;
    } else {
      if (date !== undefined || time !== undefined) throw scheduleSyntaxError(text, word.offset, `"${word.text}" is not a time, and the date must come before the time`);
      date = word;
    }
  }

  const { years, months, days, lastDays } = date === undefined ? anyDate() : parseDate(date, text);
  const { hours, minutes, seconds } = time === undefined ? midnight() : parseTime(time, text);
  const spec: CalendarSpec = { years, months, days, lastDays, weekdays, hours, minutes, seconds, dayRule: 'all' };
  return timeZone === undefined ? { spec } : { spec, timeZone };
}

function parseWeekdays(list: string, text: string, offset: number): Uint8Array {
  const set = new Uint8Array(7);
  let at = offset;
  for (const item of list.split(',')) {
    const fail = (why: string) => scheduleSyntaxError(text, at, why);
    const bounds = item.split(/\.\.|-/);
    if (bounds.length > 2 || item === '') throw fail(`"${item}" is not a weekday or a range of weekdays`);
    const numbers = bounds.map((word) => {
      const number = weekdayNumber(word);
      if (number === undefined) throw fail(`"${word}" is not a weekday (mon, tue, … or monday, tuesday, …)`);
      return number;
    });
    // Ranges run Monday to Sunday, as in systemd: "mon..sun" is the whole week.
    const order = (day: number) => (day + 6) % 7;
    const from = order(numbers[0] as number);
    const to = order(numbers[numbers.length - 1] as number);
    if (from > to) throw fail(`the range "${item}" ends before it starts (weeks run mon..sun)`);
    for (let day = from; day <= to; day++) set[(day + 1) % 7] = 1;
    at += item.length + 1;
  }
  return set;
}

function anyDate() {
  return { years: fullSet(MIN_YEAR, MAX_YEAR), months: fullSet(1, 12), days: fullSet(1, 31), lastDays: new Uint8Array(32) };
}

function midnight() {
  return { hours: setOf(23, 0), minutes: setOf(59, 0), seconds: setOf(59, 0) };
}

function parseDate(word: Word, text: string) {
  const tilde = word.text.indexOf('~');
  const head = tilde < 0 ? word.text : word.text.slice(0, tilde);
  const fields = head.split('-');
  const source = (index: number) => ({ schedule: text, offset: word.offset + fields.slice(0, index).reduce((n, f) => n + f.length + 1, 0) });
  let years: Uint8Array = fullSet(MIN_YEAR, MAX_YEAR);
  let months: Uint8Array;
  let days: Uint8Array = new Uint8Array(32);
  let lastDays: Uint8Array = new Uint8Array(32);
  const expected = tilde < 0 ? [2, 3] : [1, 2];
  if (!expected.includes(fields.length)) {
    throw scheduleSyntaxError(text, word.offset, `"${word.text}" is not a date ([YEAR-]MONTH-DAY or [YEAR-]MONTH~LASTDAY)`);
  }
  const yearIndex = fields.length === (tilde < 0 ? 3 : 2) ? 0 : -1;
  if (yearIndex === 0) years = parseValueList(fields[0] as string, YEAR, source(0));
  const monthIndex = yearIndex + 1;
  months = parseValueList(fields[monthIndex] as string, MONTH, source(monthIndex));
  if (tilde < 0) {
    const dayIndex = monthIndex + 1;
    days = parseValueList(fields[dayIndex] as string, DAY, source(dayIndex));
  } else {
    lastDays = parseLastDays(word.text.slice(tilde + 1), text, word.offset + tilde + 1);
  }
  return { years, months, days, lastDays };
}

/**
 * Days from the end of the month after `~`: `k` (the k-th last day), `a..b` (the a-th to the
 * b-th last days), `k/n` (the k-th last day, then every n-th day towards the end).
 */
function parseLastDays(list: string, text: string, offset: number): Uint8Array {
  const set = new Uint8Array(32);
  let at = offset;
  for (const item of list.split(',')) {
    const fail = (why: string) => scheduleSyntaxError(text, at, why);
    const match = /^(\d{1,2})(?:\.\.(\d{1,2}))?(?:\/(\d{1,2}))?$/.exec(item);
    if (match === null) throw fail(`"${item}" is not a day counted from the end of the month`);
    const start = Number(match[1]);
    const end = match[2] === undefined ? undefined : Number(match[2]);
    const step = match[3] === undefined ? undefined : Number(match[3]);
    for (const value of [start, end ?? start]) if (value < 1 || value > 31) throw fail(`day ${value} from the end is outside 1..31`);
    if (step === 0) throw fail('the step must be at least 1');
    if (end !== undefined) {
      if (start > end) throw fail(`the range "${item}" ends before it starts`);
      for (let k = start; k <= end; k += step ?? 1) set[k] = 1;
    } else if (step !== undefined) {
      for (let k = start; k >= 1; k -= step) set[k] = 1;
    } else {
      set[start] = 1;
    }
    at += item.length + 1;
  }
  return set;
}

function parseTime(word: Word, text: string): { hours: Uint8Array; minutes: Uint8Array; seconds: Uint8Array } {
  const fields = word.text.split(':');
  const source = (index: number) => ({ schedule: text, offset: word.offset + fields.slice(0, index).reduce((n, f) => n + f.length + 1, 0) });
  if (fields.length === 1) {
    // Proxmox: minutes alone, every hour.
    return { hours: fullSet(0, 23), minutes: parseValueList(fields[0] as string, MINUTE, source(0)), seconds: setOf(59, 0) };
  }
  if (fields.length > 3) throw scheduleSyntaxError(text, word.offset, `"${word.text}" is not a time (HOUR:MINUTE[:SECOND])`);
  if (fields.some((field) => field.includes('.') && !field.includes('..'))) {
    throw scheduleSyntaxError(text, word.offset, 'fractions of a second are not supported');
  }
  return {
    hours: parseValueList(fields[0] as string, HOUR, source(0)),
    minutes: parseValueList(fields[1] as string, MINUTE, source(1)),
    seconds: fields.length === 3 ? parseValueList(fields[2] as string, SECOND, source(2)) : setOf(59, 0),
  };
}
