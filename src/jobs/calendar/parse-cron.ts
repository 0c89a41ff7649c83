/**
 * Standard five-field cron expressions, as crontab(5) (Vixie/cronie) defines them:
 *
 *     MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK
 *
 * Each field: `*`, a value, a range `a-b`, a step `*\/n` or `a-b/n` (and `a/n`, from a to the
 * field's end), lists with `,`. Months may be named jan..dec and weekdays sun..sat; weekday 0
 * and 7 are both Sunday. Runs at second 0.
 *
 * The day rule: when both DAY-OF-MONTH and DAY-OF-WEEK are restricted (neither starts with
 * `*`), a day matches if EITHER matches (`0 3 1 * mon` runs on the 1st and on every Monday);
 * otherwise both must (and the `*` one matches every day).
 *
 * Macros: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly.
 */
import { fullSet, MAX_YEAR, MIN_YEAR, setOf, type CalendarSpec } from './calendar-spec.js';
import { scheduleSyntaxError } from './schedule-syntax-error.js';
import { parseValueList, type FieldSyntax } from './value-list.js';

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

function named(names: string[], first: number) {
  return (word: string): number | undefined => {
    if (/^\d{1,2}$/.test(word)) return Number(word);
    const index = names.indexOf(word.toLowerCase());
    return index < 0 ? undefined : index + first;
  };
}

const FIELDS: FieldSyntax[] = [
  { name: 'minute', min: 0, max: 59, rangeSeparator: '-' },
  { name: 'hour', min: 0, max: 23, rangeSeparator: '-' },
  { name: 'day of the month', min: 1, max: 31, rangeSeparator: '-' },
  { name: 'month', min: 1, max: 12, rangeSeparator: '-', readValue: named(MONTH_NAMES, 1) },
  { name: 'day of the week', min: 0, max: 7, rangeSeparator: '-', readValue: named(DAY_NAMES, 0) },
];

/** True when `text` looks like a cron expression (a macro, or five fields none of which is calendar-event syntax). */
export function looksLikeCron(text: string): boolean {
  const fields = text.trim().split(/\s+/);
  if (fields[0]?.startsWith('@')) return true;
  return fields.length === 5 && fields.every((field) => /^[0-9a-z*,/-]+$/i.test(field)) && !/^[a-z]/i.test(fields[0] as string);
}

/**
 * Parses a five-field cron expression or a macro.
 * @example parseCron('*\/15 22-23,0-5 * * 1-5') // every 15 minutes at night on working days
 * @throws CofferError E_USAGE with the position of the field at fault.
 */
export function parseCron(text: string): CalendarSpec {
  const trimmed = text.trim();
  if (trimmed.startsWith('@')) {
    const expansion = MACROS[trimmed.toLowerCase()];
    if (expansion === undefined) throw scheduleSyntaxError(text, text.indexOf('@'), `unknown macro "${trimmed}" (known: ${Object.keys(MACROS).join(', ')})`);
    return parseCron(expansion);
  }
  const words = [...text.matchAll(/\S+/g)];
  if (words.length !== 5) throw scheduleSyntaxError(text, 0, `a cron expression has 5 fields (minute hour day-of-month month day-of-week), not ${words.length}`);
  const sets = words.map((word, index) => parseValueList(word[0], FIELDS[index] as FieldSyntax, { schedule: text, offset: word.index ?? 0 }));
  const weekdays = sets[4] as Uint8Array;
  if (weekdays[7] === 1) weekdays[0] = 1;
  const restricted = (index: number) => !(words[index]?.[0] ?? '*').startsWith('*');
  return {
    years: fullSet(MIN_YEAR, MAX_YEAR),
    months: sets[3] as Uint8Array,
    days: sets[2] as Uint8Array,
    lastDays: new Uint8Array(32),
    weekdays: weekdays.subarray(0, 7),
    hours: sets[1] as Uint8Array,
    minutes: sets[0] as Uint8Array,
    seconds: setOf(59, 0),
    dayRule: restricted(2) && restricted(4) ? 'either' : 'all',
  };
}
