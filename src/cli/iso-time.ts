import { CofferError } from '../errors/index.js';

/** `YYYY-MM-DD`, optionally `THH:MM[:SS[.fraction]]` and then a zone (`Z` or `±HH:MM`). */
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/;

/**
 * An ISO 8601 time given on the command line (`backup --time`), strictly: `2026-11-29`
 * (midnight UTC), `2026-11-29T08:30:00Z`, `2026-11-29T09:30+01:00`. JavaScript's own parser
 * takes far more and guesses: `2026-02-30` becomes March 2, a time without a zone is read in
 * the local zone, and `Sun, 29 Nov 2026` or `1` pass as dates. Here a day that does not exist,
 * a time out of range and a time of day without its zone are usage errors naming `option`.
 */
export function parseIsoTime(text: string, option: string): Date {
  const refuse = (why: string) => new CofferError('E_USAGE', `${option} ${text}: ${why} (e.g. 2026-11-29T08:30:00Z or 2026-11-29T09:30:00+01:00)`);
  const match = ISO_8601.exec(text.trim());
  if (match === null) throw refuse('not an ISO 8601 date and time');
  const [, year, month, day, hour, minute, second, fraction, zone] = match;
  if (hour !== undefined && zone === undefined) throw refuse('a time of day needs its zone, Z for UTC or an offset such as +01:00');
  const numbers = [year, month, day, hour ?? '0', minute ?? '0', second ?? '0'].map(Number) as [number, number, number, number, number, number];
  const [y, mo, d, h, mi, s] = numbers;
  const milliseconds = fraction === undefined ? 0 : Math.floor(Number(`0.${fraction}`) * 1000);
  const utc = Date.UTC(y, mo - 1, d, h, mi, s, milliseconds);
  const back = new Date(utc);
  if (h > 23 || mi > 59 || s > 59) throw refuse('the time of day is out of range');
  if (mo < 1 || mo > 12 || back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) throw refuse(`there is no day ${d} in month ${mo} of ${y}`);
  let offsetMinutes = 0;
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2));
    if (oh > 23 || om > 59) throw refuse('the zone offset is out of range');
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  return new Date(utc - offsetMinutes * 60_000);
}
