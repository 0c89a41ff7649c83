/**
 * An audit entry's details (free-form JSON the server records with each action: a run's VMs,
 * a grant's role and path, a config change's versions and comment, an error's text) as words
 * an administrator reads, instead of raw JSON: one "key: value" line per key; a list's items
 * joined by commas (objects in it by semicolons); an object's fields as "key value".
 */
export function detailLines(details: Readonly<Record<string, unknown>>): string[] {
  return Object.entries(details).map(([key, value]) => `${key}: ${describe(value)}`);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'none';
  if (Array.isArray(value)) {
    if (value.length === 0) return 'none';
    return value.map(describe).join(value.some((v) => typeof v === 'object' && v !== null) ? '; ' : ', ');
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k} ${describe(v)}`).join(', ');
  }
  return String(value);
}
