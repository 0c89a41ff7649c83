/**
 * Errors the API answers with that are not Coffer's own (HTTP-level: not logged in, not
 * allowed, not found, too many attempts…): a status, a stable code and one line of detail.
 * They become RFC 9457 problem details in problem.ts, like CofferErrors do.
 */
export const API_ERROR_CODES = {
  /** No valid session cookie or token. */
  E_UNAUTHENTICATED: 401,
  /** Authenticated, but no grant gives the permission the operation needs on its object. */
  E_FORBIDDEN: 403,
  /** A cookie-authenticated unsafe request without the session's X-CSRF-Token header. */
  E_CSRF: 403,
  /** A restore's `to` lies outside every folder `restore.allowed-targets` names. */
  E_RESTORE_TARGET_REFUSED: 403,
  /** The user must change the one-time password first (POST /api/v1/auth/password). */
  E_PASSWORD_CHANGE_REQUIRED: 403,
  /** The request does not match the operation's schema (`errors` lists where). */
  E_VALIDATION: 400,
  /** No such object (user, token, host, VM, job, repository, snapshot, config version). */
  E_NOT_FOUND: 404,
  /** The object exists already, or changed since it was read. */
  E_CONFLICT: 409,
  /**
   * The change would leave no user with Admin on `/` (the last one deleted or demoted): nobody
   * could manage users or grants any more.
   */
  E_LAST_ADMIN: 409,
  /** Too many failed logins: wait (Retry-After). */
  E_RATE_LIMITED: 429,
  /** The Range header asks for bytes the file does not have (Content-Range says its size). */
  E_RANGE: 416,
  /** A part of the service this request needs does not run here (no task runner). */
  E_UNAVAILABLE: 503,
} as const;
export type ApiErrorCode = keyof typeof API_ERROR_CODES;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;

  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.status = API_ERROR_CODES[code];
  }
}
