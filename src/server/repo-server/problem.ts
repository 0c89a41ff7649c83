import type { ErrorCode } from '../../errors/index.js';
import { isCofferError } from '../../errors/index.js';

/**
 * Errors as RFC 9457 problem details (`application/problem+json`):
 * `{"type": "urn:coffer:problem:<code>", "title": …, "status": …, "detail": …, "code": …}`,
 * plus a `Coffer-Error: <code>` header so that a HEAD answer (which has no body) still says
 * which problem it is. `code` is a Coffer error code (src/errors) or one of the server's own
 * below; `detail` is one line a human can act on, never a stack trace or a secret.
 */
export interface Problem {
  status: number;
  code: string;
  title: string;
  detail: string;
}

/** The server's own problem codes (not CofferError codes), with their status and title. */
export const SERVER_PROBLEMS = {
  E_UNAUTHENTICATED: { status: 401, title: 'no valid token' },
  E_ACCESS_DENIED: { status: 403, title: 'this token may not do that' },
  E_OVERWRITE_REFUSED: { status: 403, title: 'the object exists and this token may not replace it' },
  E_BAD_KEY: { status: 400, title: 'not a valid object key' },
  E_BAD_REQUEST: { status: 400, title: 'the request is malformed' },
  E_OBJECT_EXISTS: { status: 412, title: 'the object exists (the put asked If-None-Match: *)' },
  E_LENGTH_REQUIRED: { status: 411, title: 'a put needs a Content-Length' },
  E_TOO_LARGE: { status: 413, title: 'the object is larger than the server accepts' },
  E_CURSOR_GONE: { status: 410, title: 'the listing expired; start it again' },
  E_TOO_MANY_FAILURES: { status: 429, title: 'too many refused tokens from this address' },
  E_INTERNAL: { status: 500, title: 'the server failed' },
} as const;

/** A problem of the server's own. */
export function problem(code: keyof typeof SERVER_PROBLEMS, detail: string): Problem {
  return { ...SERVER_PROBLEMS[code], code, detail };
}

/** HTTP statuses of the CofferError codes a backend throws; anything else is 500. */
const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  E_MISSING_OBJECT: 404,
  E_REPO_NOT_FOUND: 404,
  E_NO_SPACE: 507,
  E_BACKEND_IO: 503,
  E_USAGE: 400,
};

/** The problem for an error thrown while serving (a backend's CofferError, or a bug). */
export function problemOf(error: unknown): Problem {
  if (isCofferError(error)) {
    const status = STATUS_OF[error.code] ?? 500;
    return { status, code: error.code, title: error.code, detail: error.message.split('\n')[0] ?? '' };
  }
  if (error instanceof RangeError) return problem('E_BAD_KEY', error.message);
  return problem('E_INTERNAL', 'the server failed; its log says why');
}
