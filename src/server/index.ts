/**
 * @module server
 * Coffer as a service: the state database, the REST API with authentication and roles, the
 * task runner and its worker processes, and the repository server that guest agents write to.
 * Stands on jobs, backup and restore; nothing below imports it.
 */
export * from './state/index.js';
export * from './notify/index.js';
export * from './metrics/index.js';
