/**
 * Notifications: events (a job finished, a VM failed, an RPO missed, damage, verify and test
 * restore results, low space …) recorded in the state database, routed by rules (type,
 * severity, job, VM tag, time of day) to targets (SMTP e-mail, JSON webhooks signed with
 * HMAC-SHA256) through a persistent outbox with retries and a delivery log, and a daily
 * summary with failures first. The same record feeds `/metrics` (server/metrics).
 *
 * Use: validate the config section (`validateNotificationConfig`), `Notifier.start({db,
 * config})`, then `notifier.emit(event)` from wherever things happen.
 */
export { EVENT_TYPES, SEVERITIES, type BackupFigures, type EventType, type NotificationEvent, type RecordedEvent, type RepositoryFigures, type Severity } from './event.js';
export { NOTIFICATION_CONFIG_SCHEMA } from './notification-config-schema.js';
export {
  NOTIFY_DEFAULTS,
  type DailySummary,
  type NotificationConfig,
  type NotificationRule,
  type NotificationTarget,
  type DeliveryRetryPolicy,
  type SmtpTarget,
  type SmtpTlsMode,
  type TimeWindow,
  type WebhookTarget,
} from './notification-config.js';
export {
  formatPath,
  parseNotificationConfig,
  validateNotificationConfig,
  type NotificationConfigIssue,
  type NotificationConfigResult,
  type ValidateOptions,
} from './validate-notification-config.js';
export { Notifier, type EmitResult, type NotifierOptions } from './notifier.js';
export type { DeliveryRecord } from './outbox.js';
export type { MetricsFigures } from './metrics-figures.js';
export { SIGNATURE_HEADER, signBody } from './webhook-delivery.js';
