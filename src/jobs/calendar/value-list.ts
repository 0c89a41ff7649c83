/**
 * One field of a schedule written as a list of values (shared by calendar events and cron):
 * comma-separated items, each `*`, a value, a range, or either followed by `/step`.
 * The range separator is `..` in calendar events and `-` in cron. A repetition without an
 * end (`a/n`, `*\/n`) runs to the field's maximum in both.
 */
import { scheduleSyntaxError } from './schedule-syntax-error.js';

/** What a field accepts and how it reads its values. */
export interface FieldSyntax {
  /** Named in errors: "hour", "day of the month" … */
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** `..` (calendar events) or `-` (cron). */
  readonly rangeSeparator: '..' | '-';
  /** Reads one value (a number or, where the field has them, a name); undefined if it is none. Default: 1 to 4 digits. */
  readonly readValue?: (word: string) => number | undefined;
}

/** Where the field sits in the whole schedule text, for error positions. */
export interface FieldSource {
  readonly schedule: string;
  readonly offset: number;
}

function readNumber(word: string): number | undefined {
  return /^\d{1,4}$/.test(word) ? Number(word) : undefined;
}

/**
 * The set of values (indexed by value, `max + 1` long) that `text` allows.
 * @throws CofferError E_USAGE naming the position of a bad item, a value out of range, a
 *   range whose start is after its end, or a step of 0.
 */
export function parseValueList(text: string, syntax: FieldSyntax, source: FieldSource): Uint8Array {
  const set = new Uint8Array(syntax.max + 1);
  const read = syntax.readValue ?? readNumber;
  let offset = source.offset;
  if (text === '') throw scheduleSyntaxError(source.schedule, offset, `the ${syntax.name} is empty`);
  for (const item of text.split(',')) {
    const fail = (why: string) => scheduleSyntaxError(source.schedule, offset, why);
    const value = (word: string): number => {
      const parsed = read(word);
      if (parsed === undefined) throw fail(`"${word}" is not a valid ${syntax.name}`);
      if (parsed < syntax.min || parsed > syntax.max) throw fail(`${syntax.name} ${word} is outside ${syntax.min}..${syntax.max}`);
      return parsed;
    };
    const slash = item.indexOf('/');
    const base = slash < 0 ? item : item.slice(0, slash);
    let step = 1;
    if (slash >= 0) {
      const stepText = item.slice(slash + 1);
      if (!/^\d{1,4}$/.test(stepText) || Number(stepText) === 0) throw fail(`the step "/${stepText}" must be a whole number of at least 1`);
      step = Number(stepText);
    }
    let start: number;
    let end: number;
    if (base === '*') {
      start = syntax.min;
      end = syntax.max;
    } else {
      const separator = base.indexOf(syntax.rangeSeparator);
      if (separator < 0) {
        start = value(base);
        end = slash >= 0 ? syntax.max : start;
      } else {
        start = value(base.slice(0, separator));
        end = value(base.slice(separator + syntax.rangeSeparator.length));
        if (start > end) throw fail(`the range "${base}" ends before it starts`);
      }
    }
    for (let v = start; v <= end; v += step) set[v] = 1;
    offset += item.length + 1;
  }
  return set;
}
