/**
 * The configuration file's shape, declared once as JSON Schema: the loader validates the YAML
 * file with it, and the API routes use the same pieces for their bodies and responses (and
 * so for the OpenAPI document), so the file, the API and the console cannot disagree.
 * Every key is documented in docs/server-config.md. Keys are kebab-case, as in the file.
 *
 * What the schema cannot say (a job names a repository that exists, a schedule parses, names
 * are unique) is checked by check-config.ts.
 */
import { DISK_FORMATS, type DiskFormat } from '../../disk/index.js';
import { NOTIFICATION_CONFIG_SCHEMA } from '../notify/index.js';

/** A name: what the config's lists are keyed by, and what appears in paths like `/vms/NAME`. */
export const NameSchema = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' } as const;
const Names = { type: 'array', items: NameSchema } as const;
/** A duration such as `26h`, `7d`, `90m`, `1d12h` (durations.ts). */
export const DurationSchema = { type: 'string', pattern: '^([0-9]+[smhdw])+$' } as const;
/** A rate in bytes per second such as `20M`, `500K`, `1G` (rates.ts). */
const RateSchema = { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?[KMGT]?$' } as const;
const TimeOfDaySchema = { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' } as const;
const PositiveInteger = { type: 'integer', minimum: 1 } as const;

export const SecuritySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    'four-eyes': { type: 'boolean', description: 'destructive operations wait for a second administrator' },
    'session-hours': { type: 'integer', minimum: 1, maximum: 720, description: 'how long a console session lasts (default 12)' },
  },
} as const;

export const RepositorySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'url'],
  properties: {
    name: NameSchema,
    url: { type: 'string', minLength: 1, description: 'a local path, or s3:https://HOST/BUCKET/PREFIX' },
    'passphrase-file': { type: 'string', minLength: 1, description: 'a file holding the passphrase (its content never leaves the server)' },
  },
} as const;

export const HostSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: NameSchema,
    address: { type: 'string', minLength: 1 },
    datastores: Names,
  },
} as const;

/** What a running VM's capture takes besides its address, as `coffer backup` takes it (--no-freeze, --pre-capture, --scratch-dir…). */
const LiveCaptureProperties = {
  freeze: { type: 'boolean', description: 'freeze the guest\'s filesystems through its agent around the instant (default true)' },
  'pre-capture': { type: 'string', minLength: 1, description: 'a shell command run just before the instant of capture; failing stops the backup' },
  'post-capture': { type: 'string', minLength: 1, description: 'a shell command run right after it, even when the capture failed' },
  'scratch-dir': { type: 'string', pattern: '^/', description: 'where the scratch images go (default: the system\'s temporary folder)' },
  'scratch-min-free': { ...RateSchema, description: 'free space kept in the scratch filesystem, e.g. 512M (default: 5% of it, 16M to 256M)' },
} as const;

export const VmSourceSchema = {
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['images'],
      properties: {
        images: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        'source-format': { type: 'string', enum: [...DISK_FORMATS], description: 'read every image as this format, not the one its content shows (raw for raw disks and volumes: a guest could write an image header at their start)' },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['qmp'],
      properties: {
        qmp: { type: 'string', minLength: 1, description: 'the QMP monitor: a unix socket path or HOST:PORT' },
        'guest-agent': { type: 'string', minLength: 1, description: 'the host end of the guest agent channel (default: found through QMP)' },
        'freeze-timeout': { ...DurationSchema, description: 'how long the guest agent may take to freeze (default 60s)' },
        ...LiveCaptureProperties,
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['libvirt'],
      properties: {
        libvirt: { type: 'object', additionalProperties: false, required: ['domain'], properties: { uri: { type: 'string', minLength: 1 }, domain: { type: 'string', minLength: 1 } } },
        ...LiveCaptureProperties,
      },
    },
    {
      // A machine running `coffer agent` (docs/agent.md): its files, backed up by the agent itself.
      type: 'object',
      additionalProperties: false,
      required: ['agent', 'files'],
      properties: {
        agent: { ...NameSchema, description: 'the agent\'s name (its token\'s: coffer agent token add NAME)' },
        files: {
          type: 'object',
          additionalProperties: false,
          required: ['paths'],
          properties: {
            paths: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^/', minLength: 1 }, description: 'absolute paths on the agent\'s machine' },
            exclude: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'glob patterns, as coffer backup --exclude' },
          },
        },
      },
    },
  ],
} as const;

export const AgentsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    'offline-after': { ...DurationSchema, description: 'an agent not heard from for this long is offline (default 15s)' },
    'wait-offline': { ...DurationSchema, description: 'a task of a run without a window waits this long for its offline agent, then fails (default 1h)' },
  },
} as const;

export const VmSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'host', 'source'],
  properties: {
    name: NameSchema,
    host: NameSchema,
    datastore: NameSchema,
    source: VmSourceSchema,
    tags: Names,
    rpo: DurationSchema,
  },
} as const;

export const SelectorSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    names: Names,
    globs: { type: 'array', items: { type: 'string', minLength: 1 } },
    tags: Names,
    hosts: Names,
  },
} as const;

export const RetentionSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    'keep-last': PositiveInteger,
    'keep-hourly': PositiveInteger,
    'keep-daily': PositiveInteger,
    'keep-weekly': PositiveInteger,
    'keep-monthly': PositiveInteger,
    'keep-yearly': PositiveInteger,
    'keep-within': DurationSchema,
    'keep-tags': Names,
    'prune-schedule': { type: 'string', minLength: 1, description: 'prune the job\'s repository when this calendar event fires (in the job\'s zone)' },
    'prune-after-forgets': { ...PositiveInteger, description: 'or: every N-th forget after a run prunes afterwards' },
  },
} as const;

const ScheduledCheckSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['schedule'],
  properties: {
    schedule: { type: 'string', minLength: 1 },
    'read-data-subset': { type: 'string', pattern: '^([0-9]+/[0-9]+|[0-9]+(\\.[0-9]+)?%)$' },
    boot: { type: 'boolean', description: 'test-restore: also boot the VM from the backup, isolated, and wait for `boot-expect` on its serial console' },
    'boot-expect': { type: 'string', minLength: 1, maxLength: 200, description: 'test-restore with boot: the console text that means the VM came up (default `login:`)' },
  },
} as const;

export const JobSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'select', 'repository', 'schedule'],
  properties: {
    name: NameSchema,
    select: SelectorSchema,
    repository: NameSchema,
    schedule: { type: 'string', minLength: 1, description: 'a calendar event (mon..fri 22:00) or a cron expression' },
    timezone: { type: 'string', minLength: 1, description: 'IANA time zone of the schedule (default UTC)' },
    'repeat-missed': { type: 'boolean' },
    retention: RetentionSchema,
    window: { type: 'object', additionalProperties: false, required: ['start', 'end'], properties: { start: TimeOfDaySchema, end: TimeOfDaySchema } },
    limits: { type: 'object', additionalProperties: false, properties: { concurrent: PositiveInteger } },
    after: NameSchema,
    verify: ScheduledCheckSchema,
    'test-restore': ScheduledCheckSchema,
  },
} as const;

const LimitMap = { type: 'object', additionalProperties: PositiveInteger, propertyNames: NameSchema } as const;

export const LimitsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    global: PositiveInteger,
    'per-host': PositiveInteger,
    'per-datastore': PositiveInteger,
    'per-repository': PositiveInteger,
    hosts: LimitMap,
    datastores: LimitMap,
    repositories: LimitMap,
    'latency-guard': {
      type: 'object',
      additionalProperties: false,
      required: ['threshold-ms'],
      description: 'source latency guard (docs/tasks.md): no new backup starts on a datastore whose running backup reads slower than threshold-ms, and such backups are slowed',
      properties: {
        'threshold-ms': { type: 'integer', minimum: 0, description: 'mean source read latency, ms, above which a datastore is held and its backups slowed' },
        throttle: { type: 'boolean', description: 'slow the running backups whose reads are above the threshold (default true)' },
        'min-read': { ...RateSchema, description: 'the lowest source read rate the throttle sets, bytes per second with K, M, G or T (default 1M, at least 1K)' },
      },
    },
    bandwidth: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          when: { type: 'string', minLength: 1, description: 'days and hours, e.g. "mon..fri 08:00-18:00" (always when absent)' },
          read: RateSchema,
          write: RateSchema,
          hosts: Names,
          repositories: Names,
          timezone: { type: 'string', minLength: 1, description: 'IANA time zone of `when` (default UTC)' },
        },
      },
    },
  },
} as const;

/**
 * Notification targets, rules and the daily summary: server/notify's own schema (its shape is
 * docs/notifications.md), without its `$schema` (this document is validated as a whole).
 */
const { $schema: _notifySchemaDialect, ...notificationsSchema } = NOTIFICATION_CONFIG_SCHEMA;
export const NotificationsSchema = notificationsSchema;

/** `/metrics` for Prometheus: on or off, and the file holding the bearer token scrapers send. */
export const MetricsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    enabled: { type: 'boolean', description: 'serve GET /metrics (default true)' },
    'token-file': { type: 'string', minLength: 1, description: 'a file holding the bearer token scrapes must send (none: no token asked)' },
  },
} as const;

/** The task runner: retries of failed VM backups, and how long finished runs are kept. */
export const TasksSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    retries: { type: 'integer', minimum: 0, maximum: 20, description: 'how many times a failed or interrupted VM backup is tried again (default 2)' },
    'retry-delay': DurationSchema,
    'retry-backoff': { type: 'number', minimum: 1, maximum: 10, description: 'each further retry waits this many times longer (default 2)' },
    history: DurationSchema,
  },
} as const;

/** The periodic health checks (server/health): RPO and free space. */
export const HealthSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    interval: { ...DurationSchema, description: 'how often the checks run (default 15m)' },
    'min-free': { type: 'string', pattern: '^([0-9]{1,3}(\\.[0-9]+)?%|[0-9]+(\\.[0-9]+)?[KMGT]?)$', description: 'space is low under this share (10%) or amount (20G) free (default 10%)' },
  },
} as const;

/** Where restores through the API may write (restore-targets.ts in http/ enforces it). */
export const RestoreSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    'allowed-targets': {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: '^/', minLength: 2 },
      description: 'absolute folders a restore may write into, symlinks resolved (default: restores/ in the data directory)',
    },
  },
} as const;

export const ConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    security: SecuritySchema,
    repositories: { type: 'array', items: RepositorySchema },
    hosts: { type: 'array', items: HostSchema },
    vms: { type: 'array', items: VmSchema },
    jobs: { type: 'array', items: JobSchema },
    limits: LimitsSchema,
    notifications: NotificationsSchema,
    metrics: MetricsSchema,
    tasks: TasksSchema,
    restore: RestoreSchema,
    health: HealthSchema,
    agents: AgentsSchema,
  },
} as const;

export interface RepositoryConfig {
  name: string;
  url: string;
  'passphrase-file'?: string;
}
export interface HostConfig {
  name: string;
  address?: string;
  datastores?: string[];
}
/** {@link LiveCaptureProperties}. */
export interface LiveCaptureConfig {
  freeze?: boolean;
  'pre-capture'?: string;
  'post-capture'?: string;
  'scratch-dir'?: string;
  'scratch-min-free'?: string;
}
export type VmSource =
  | { images: string[]; 'source-format'?: DiskFormat }
  | ({ qmp: string; 'guest-agent'?: string; 'freeze-timeout'?: string } & LiveCaptureConfig)
  | ({ libvirt: { uri?: string; domain: string } } & LiveCaptureConfig)
  | { agent: string; files: { paths: string[]; exclude?: string[] } };
export interface AgentsConfig {
  'offline-after'?: string;
  'wait-offline'?: string;
}
export interface VmConfig {
  name: string;
  host: string;
  datastore?: string;
  source: VmSource;
  tags?: string[];
  rpo?: string;
}
export interface VmSelector {
  names?: string[];
  globs?: string[];
  tags?: string[];
  hosts?: string[];
}
export interface RetentionConfig {
  'keep-last'?: number;
  'keep-hourly'?: number;
  'keep-daily'?: number;
  'keep-weekly'?: number;
  'keep-monthly'?: number;
  'keep-yearly'?: number;
  'keep-within'?: string;
  'keep-tags'?: string[];
  'prune-schedule'?: string;
  'prune-after-forgets'?: number;
}
export interface ScheduledCheckConfig {
  schedule: string;
  'read-data-subset'?: string;
  boot?: boolean;
  'boot-expect'?: string;
}
export interface JobConfig {
  name: string;
  select: VmSelector;
  repository: string;
  schedule: string;
  timezone?: string;
  'repeat-missed'?: boolean;
  retention?: RetentionConfig;
  window?: { start: string; end: string };
  limits?: { concurrent?: number };
  after?: string;
  verify?: ScheduledCheckConfig;
  'test-restore'?: ScheduledCheckConfig;
}
export interface BandwidthRuleConfig {
  when?: string;
  read?: string;
  write?: string;
  hosts?: string[];
  repositories?: string[];
  timezone?: string;
}
export interface LimitsConfig {
  global?: number;
  'per-host'?: number;
  'per-datastore'?: number;
  'per-repository'?: number;
  hosts?: Record<string, number>;
  datastores?: Record<string, number>;
  repositories?: Record<string, number>;
  'latency-guard'?: { 'threshold-ms': number; throttle?: boolean; 'min-read'?: string };
  bandwidth?: BandwidthRuleConfig[];
}
/** The `notifications` section, validated by server/notify (`validateNotificationConfig`). */
export type NotificationsConfig = Record<string, unknown>;
export interface MetricsConfig {
  enabled?: boolean;
  'token-file'?: string;
}
export interface TasksConfig {
  retries?: number;
  'retry-delay'?: string;
  'retry-backoff'?: number;
  history?: string;
}
export interface HealthConfig {
  interval?: string;
  'min-free'?: string;
}
export interface RestoreConfig {
  'allowed-targets'?: string[];
}
/** The whole configuration file, as validated by {@link ConfigSchema}. */
export interface ServiceConfig {
  security?: { 'four-eyes'?: boolean; 'session-hours'?: number };
  repositories?: RepositoryConfig[];
  hosts?: HostConfig[];
  vms?: VmConfig[];
  jobs?: JobConfig[];
  limits?: LimitsConfig;
  notifications?: NotificationsConfig;
  metrics?: MetricsConfig;
  tasks?: TasksConfig;
  restore?: RestoreConfig;
  health?: HealthConfig;
  agents?: AgentsConfig;
}
