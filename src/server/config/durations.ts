/**
 * Durations and rates as the configuration file writes them: `26h`, `7d`, `1d12h`, `90m`,
 * `2w`, `30s`; rates in bytes per second `20M`, `500K`, `1.5G` (powers of 1024, as the CLI's
 * `--limit-upload`).
 */
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const RATE_UNIT: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Milliseconds of a duration, or undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  if (!/^([0-9]+[smhdw])+$/.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(/([0-9]+)([smhdw])/g)) total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  return Number.isSafeInteger(total) && total > 0 ? total : undefined;
}

/** Bytes per second of a rate, or undefined when the text is not one. */
export function parseRate(text: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)([KMGT]?)$/.exec(text);
  if (match === null) return undefined;
  const value = Number(match[1]) * (RATE_UNIT[match[2] as string] as number);
  return value >= 1 ? Math.floor(value) : undefined;
}
