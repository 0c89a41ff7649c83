/**
 * The service's configuration: the YAML file (repositories, hosts, VMs, jobs, limits,
 * notification targets; docs/server-config.md), its JSON schemas (shared with the API
 * routes), validation with line numbers, versioned atomic changes, and secret redaction.
 */
export * from './config-schema.js';
export { parseConfig } from './parse-config.js';
export { ConfigInvalidError, formatProblem, type ConfigProblem } from './config-problem.js';
export { ConfigStore, type ConfigVersion } from './config-store.js';
export { FIRST_START_CONFIG } from './sample-config.js';
export { parseDuration, parseRate } from './durations.js';
export { REDACTED, isSecretKey, redactValue } from './redact-secrets.js';
export { writeFileAtomically } from './atomic-write.js';
