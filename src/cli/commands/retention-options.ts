import { CofferError } from '../../errors/index.js';
import { parseKeepCount, parseRetentionDuration, type RetentionPolicy } from '../../repo/index.js';

/** The `--keep-*` options of `coffer forget`, as commander hands them over (strings). */
export interface RetentionOptions {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  keepTag?: string[];
}

const COUNTS = [
  ['keepLast', 'last', '--keep-last'],
  ['keepHourly', 'hourly', '--keep-hourly'],
  ['keepDaily', 'daily', '--keep-daily'],
  ['keepWeekly', 'weekly', '--keep-weekly'],
  ['keepMonthly', 'monthly', '--keep-monthly'],
  ['keepYearly', 'yearly', '--keep-yearly'],
] as const;

/**
 * The policy the `--keep-*` options describe, or null when none was given. Each `--keep-tag`
 * is a comma-separated list of tags a snapshot must all have. Throws `E_USAGE` for a value
 * that does not parse; whether the policy keeps anything is checked by the policy itself.
 */
export function policyFromOptions(options: RetentionOptions): RetentionPolicy | null {
  const policy: RetentionPolicy = {};
  let given = false;
  for (const [option, rule, flag] of COUNTS) {
    const text = options[option];
    if (text === undefined) continue;
    policy[rule] = parseKeepCount(text, flag);
    given = true;
  }
  if (options.keepWithin !== undefined) {
    policy.within = parseRetentionDuration(options.keepWithin);
    given = true;
  }
  if (options.keepTag !== undefined && options.keepTag.length > 0) {
    policy.tags = options.keepTag.map((list) => {
      const tags = list.split(',');
      if (tags.some((tag) => tag === '')) throw new CofferError('E_USAGE', `--keep-tag ${JSON.stringify(list)}: empty tag (give TAG or TAG,TAG,…)`);
      return tags;
    });
    given = true;
  }
  return given ? policy : null;
}

/** The policy as `forget --json` reports it (within as its text). */
export function policyJson(policy: RetentionPolicy): Record<string, unknown> {
  const { within, ...rest } = policy;
  return { ...rest, ...(within !== undefined ? { within: within.text } : {}) };
}

/** The policy in words, for the text report: `keep daily 3, weekly 2, within 7d`. */
export function describePolicy(policy: RetentionPolicy): string {
  const parts: string[] = [];
  for (const [, rule] of COUNTS) {
    const count = policy[rule];
    if (count !== undefined && count !== 0) parts.push(`${rule} ${count === -1 ? 'unlimited' : count}`);
  }
  if (policy.within !== undefined) parts.push(`within ${policy.within.text}`);
  for (const tags of policy.tags ?? []) parts.push(`tag ${tags.join(',')}`);
  return `keep ${parts.join(', ')}`;
}
