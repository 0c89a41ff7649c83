/**
 * Who may do what: users with scrypt passwords, console sessions with CSRF tokens, API tokens
 * limited to a subset of their owner's grants, roles granted on paths (the permission table
 * in roles.ts), and login rate limiting.
 */
export { PERMISSIONS, ROLES, ROLE_PERMISSIONS, GRANT_PATH_PATTERN, isRole, type Permission, type Role } from './roles.js';
export { allows, allowsSomewhere, grantWithin, pathCovers, type Grant } from './access.js';
export { hashPassword, verifyPassword, randomPassword, MIN_PASSWORD_LENGTH } from './password.js';
export { UserStore, type User } from './user-store.js';
export { SessionStore, type Session } from './session-store.js';
export { TokenStore, TOKEN_PREFIX, type ApiToken } from './token-store.js';
export { Authenticator, userOfActor, type Authentication, type Principal } from './principal.js';
export { LoginThrottle, FREE_FAILURES } from './login-throttle.js';
export { ensureFirstAdmin, FIRST_ADMIN } from './first-admin.js';
