/**
 * The service's audit log: an append-only record of every change, login (success or
 * failure), restore and download, with who, what, when, from where and the outcome. The
 * database itself refuses to change or remove an entry.
 */
export { AuditLog, type AuditEntry, type AuditEvent, type AuditOutcome, type AuditQuery } from './audit-log.js';
