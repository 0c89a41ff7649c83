/**
 * Durations in the configuration: a whole number and a unit, `500ms`, `30s`, `5m`, `1h`,
 * `2d` (one unit only: `1h30m` is written `90m`).
 */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The pattern a duration matches (the JSON schema uses it too). */
export const DURATION_PATTERN = '^[0-9]{1,9}(ms|s|m|h|d)$';

/** Milliseconds of `text`, or undefined if it is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = /^([0-9]{1,9})(ms|s|m|h|d)$/.exec(text);
  if (match === null) return undefined;
  return Number(match[1]) * (UNITS[match[2] as string] as number);
}
