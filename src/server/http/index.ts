/**
 * The REST API under /api/v1: the Fastify application, its routes (one file per group), the
 * deny-by-default security hooks, problem details, paging, and the API reference page.
 */
export { buildApp, type BuildAppOptions } from './build-app.js';
export { ApiError, API_ERROR_CODES, type ApiErrorCode } from './api-error.js';
export { ApprovalStore, type ApprovalRequest, type ApprovedOperation } from './approvals.js';
export { defineRoute, API_PREFIX, type RouteAccess, type RouteDefinition } from './route.js';
export { ROUTE_GROUPS, type RouteGroup } from './routes/index.js';
export { canSee, SESSION_COOKIE } from './security-hooks.js';
export { auditRequest, type ServiceContext } from './service-context.js';
export { confineRestoreTarget } from './restore-targets.js';
export { problem, toProblem, PROBLEM_CONTENT_TYPE, type Problem } from './problem.js';
export { loadOrCreateCertificate, type TlsMaterial } from './tls-certificate.js';
