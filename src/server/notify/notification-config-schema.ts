/**
 * The JSON Schema (2020-12) of the `notifications` section of the server's configuration, in
 * its YAML shape (kebab-case keys). The config loader and the API validate against it; then
 * `validateNotificationConfig` checks what a schema cannot (targets named by rules exist,
 * calendar events and time zones parse) and builds the typed {@link NotificationConfig}.
 */
import { DURATION_PATTERN } from './duration.js';
import { EVENT_TYPES, SEVERITIES } from './event.js';

const duration = { type: 'string', pattern: DURATION_PATTERN } as const;
const name = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } as const;
const retry = {
  type: 'object',
  additionalProperties: false,
  properties: {
    attempts: { type: 'integer', minimum: 1, maximum: 100 },
    initial: duration,
    max: duration,
  },
} as const;
const window = {
  type: 'object',
  additionalProperties: false,
  required: ['calendar'],
  properties: {
    calendar: { type: 'string', minLength: 1, description: 'a calendar event; the minutes it matches are the window, e.g. `mon..fri 08..17:*`' },
    'time-zone': { type: 'string', minLength: 1 },
  },
} as const;

const smtpTarget = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'host', 'from', 'to'],
  properties: {
    type: { const: 'smtp' },
    host: { type: 'string', minLength: 1 },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    tls: { enum: ['none', 'starttls', 'tls'] },
    'tls-verify': { type: 'boolean' },
    user: { type: 'string', minLength: 1 },
    'password-file': { type: 'string', minLength: 1 },
    from: { type: 'string', minLength: 3 },
    to: { type: 'array', minItems: 1, items: { type: 'string', minLength: 3 } },
    timeout: duration,
    retry,
  },
} as const;

const webhookTarget = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'url'],
  properties: {
    type: { const: 'webhook' },
    url: { type: 'string', pattern: '^https?://' },
    method: { enum: ['POST', 'PUT'] },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    body: { description: 'a JSON value; strings may hold {{placeholders}}' },
    'secret-file': { type: 'string', minLength: 1 },
    timeout: duration,
    retry,
  },
} as const;

/** The schema of the `notifications` section. */
export const NOTIFICATION_CONFIG_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Coffer notifications',
  type: 'object',
  additionalProperties: false,
  properties: {
    targets: {
      type: 'object',
      propertyNames: name,
      additionalProperties: { oneOf: [smtpTarget, webhookTarget] },
    },
    rules: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'targets'],
        properties: {
          name,
          match: {
            type: 'object',
            additionalProperties: false,
            properties: {
              types: { type: 'array', items: { enum: Object.keys(EVENT_TYPES) } },
              'min-severity': { enum: [...SEVERITIES] },
              jobs: { type: 'array', items: { type: 'string', minLength: 1 } },
              'vm-tags': { type: 'array', items: { type: 'string', minLength: 1 } },
              when: window,
            },
          },
          targets: { type: 'array', minItems: 1, items: name },
          dedupe: duration,
          'group-runs': { type: 'boolean' },
        },
      },
    },
    'daily-summary': {
      type: 'object',
      additionalProperties: false,
      required: ['at', 'targets'],
      properties: {
        at: { type: 'string', minLength: 1 },
        'time-zone': { type: 'string', minLength: 1 },
        targets: { type: 'array', minItems: 1, items: name },
      },
    },
    'history-days': { type: 'integer', minimum: 1, maximum: 3660 },
  },
} as const;
