/** JSON schemas shared by several route groups (the API's own objects, not the config's). */
import { GRANT_PATH_PATTERN, ROLES } from '../../auth/index.js';

export const GrantSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['role', 'path'],
  properties: {
    role: { type: 'string', enum: [...ROLES] },
    path: { type: 'string', pattern: GRANT_PATH_PATTERN, description: '/, /hosts/H, /vms/V, /repositories/R or /jobs/J' },
  },
} as const;

export const UserSchema = {
  type: 'object',
  required: ['name', 'mustChangePassword', 'createdAt', 'grants'],
  properties: {
    name: { type: 'string' },
    mustChangePassword: { type: 'boolean' },
    createdAt: { type: 'string', format: 'date-time' },
    grants: { type: 'array', items: GrantSchema },
  },
} as const;

/** A name, path or link target as the browse routes answer it (browse/snapshot-browser.ts), and its bytes beside it. */
export const printable = (what: string) => ({ type: 'string', description: `the ${what}, printable: a byte that is not UTF-8 or a control character as \`\\xNN\`, a backslash as \`\\\\\`; what \`path=\` takes back` }) as const;
export const bytesOf = (what: string) => ({ type: 'string', pattern: '^([0-9a-f]{2})+$', description: `the ${what}'s exact bytes in hex, present when the printable form holds an escape (absent: it is the ${what} as the filesystem holds it)` }) as const;

export const NameParam = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$' } as const;

/** `{ <name>: NameParam }` as a params schema. */
export function nameParams(...names: string[]): object {
  return { type: 'object', required: names, properties: Object.fromEntries(names.map((n) => [n, NameParam])) };
}

export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
