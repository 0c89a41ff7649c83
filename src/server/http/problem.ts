/**
 * Errors as RFC 9457 problem details (`application/problem+json`): `type` (a stable URI per
 * code), `title`, `status`, `detail` (one line a human can act on), `code` (the CofferError
 * code or an HTTP-level code from api-error.ts), and for validation errors `errors` (where).
 * Never a stack trace: an unexpected error answers 500 E_INTERNAL and goes to the server's log.
 * CofferError codes map to HTTP statuses here, once.
 */
import type { ErrorCode } from '../../errors/index.js';
import { isCofferError } from '../../errors/index.js';
import { ConfigInvalidError } from '../config/index.js';
import { ApiError } from './api-error.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: unknown[];
  [extra: string]: unknown;
}

/** HTTP status per CofferError code; a code not listed is a server-side failure (500). */
const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  E_USAGE: 400,
  E_CONFIG_INVALID: 400,
  E_SNAPSHOT_NOT_FOUND: 404,
  E_DISK_NOT_FOUND: 404,
  E_VOLUME_NOT_FOUND: 404,
  E_PATH_NOT_FOUND: 404,
  E_DOMAIN_NOT_FOUND: 404,
  E_REPO_NOT_FOUND: 404,
  E_TASK_NOT_FOUND: 404,
  E_FS_UNSUPPORTED: 422,
  E_REPO_FORMAT_UNSUPPORTED: 422,
  E_VOLUME_ENCRYPTED: 422,
  E_SNAPSHOT_PROTECTED: 409,
  E_INTERRUPTED: 409,
  E_WINDOW_CLOSED: 409,
  E_REPO_BUSY: 409,
  E_KEY_REFUSED: 409,
  E_SNAPSHOT_LOCKED: 409,
  E_NO_PASSPHRASE: 502,
  E_WRONG_PASSPHRASE: 502,
  E_BACKEND_IO: 502,
  // The repository (a repository server, a bucket's policy) refused the server's own credentials: not the caller's rights.
  E_ACCESS_DENIED: 502,
  E_CONNECTION_FAILED: 502,
  E_TIMEOUT: 504,
  E_NO_SPACE: 507,
};

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  507: 'Insufficient Storage',
};

export function problem(status: number, code: string, detail: string, extra: Record<string, unknown> = {}): Problem {
  return { type: `https://coffer.dev/problems/${code.toLowerCase().replace(/^e_/, '').replace(/_/g, '-')}`, title: TITLES[status] ?? 'Error', status, detail, code, ...extra };
}

interface FastifyLikeError {
  validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }>;
  validationContext?: string;
  statusCode?: number;
  code?: string;
  message?: string;
}

/** The problem for any thrown value; `internal` is true when it must be logged as a bug. */
export function toProblem(error: unknown): { problem: Problem; internal: boolean } {
  if (error instanceof ConfigInvalidError) {
    return { problem: problem(400, error.code, error.message, { errors: error.problems.map((p) => ({ key: p.key, line: p.line, message: p.message })) }), internal: false };
  }
  if (error instanceof ApiError) return { problem: problem(error.status, error.code, error.message, error.extra), internal: false };
  if (isCofferError(error)) return { problem: problem(STATUS_BY_CODE[error.code] ?? 500, error.code, error.message), internal: false };
  const e = error as FastifyLikeError;
  if (e !== null && typeof e === 'object' && Array.isArray(e.validation)) {
    const where = e.validationContext ?? 'request';
    const errors = e.validation.map((v) => ({
      path: `${where}${v.instancePath ?? ''}${v.params?.missingProperty !== undefined ? `/${String(v.params.missingProperty)}` : ''}${v.params?.additionalProperty !== undefined ? `/${String(v.params.additionalProperty)}` : ''}`,
      message: v.message ?? 'is invalid',
    }));
    return { problem: problem(400, 'E_VALIDATION', errors.map((x) => `${x.path}: ${x.message}`).join('; '), { errors }), internal: false };
  }
  // Fastify's own client errors (bad JSON, wrong content type, body too large) keep their status.
  if (e !== null && typeof e === 'object' && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { problem: problem(e.statusCode, e.statusCode === 400 ? 'E_VALIDATION' : `E_HTTP_${e.statusCode}`, String(e.message ?? 'bad request').split('\n')[0] as string), internal: false };
  }
  return { problem: problem(500, 'E_INTERNAL', 'an internal error occurred; it has been logged on the server'), internal: true };
}

/** The JSON schema of a problem, for every route's error responses. */
export const ProblemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', additionalProperties: true } },
  },
  additionalProperties: true,
} as const;
