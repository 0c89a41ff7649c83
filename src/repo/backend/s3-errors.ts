import { CofferError } from '../../errors/index.js';

/** What failed, for the message: the operation, the bucket and the key (or prefix). */
export interface S3Failure {
  action: 'read' | 'write' | 'check' | 'delete' | 'list';
  location: string;
  bucket: string;
  key: string;
}

/** Network errors (Node's codes) that mean "the endpoint cannot be reached". */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']);
const NO_ACCESS = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled', 'Forbidden']);

/**
 * Turns an error of the AWS SDK (after its retries) into a one-line CofferError naming the
 * bucket and key:
 * - `NoSuchKey` / `NotFound` 404 → `E_MISSING_OBJECT` (only reads call this for a 404);
 * - `NoSuchBucket` → `E_REPO_NOT_FOUND`;
 * - `QuotaExceeded` (Ceph RGW's user and bucket quotas) → `E_NO_SPACE`;
 * - no credentials anywhere → `E_USAGE`, with where the SDK looks;
 * - access refused, endpoint unreachable, timeouts and the rest → `E_BACKEND_IO` with the
 *   reason (the repository's storage failed: exit code 1, like a local disk's I/O error).
 */
export function translateS3Error(error: unknown, failure: S3Failure): CofferError {
  const subject = { repository: failure.location, object: failure.key };
  const object = `s3://${failure.bucket}/${failure.key}`;
  const info = error as { name?: string; code?: string; message?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  const name = info.Code ?? info.name ?? '';
  const status = info.$metadata?.httpStatusCode;
  const make = (code: ConstructorParameters<typeof CofferError>[0], message: string) => new CofferError(code, message, { subject, cause: error });
  if (name === 'NoSuchKey' || (failure.action === 'read' && (name === 'NotFound' || status === 404) && name !== 'NoSuchBucket')) {
    return make('E_MISSING_OBJECT', `object ${failure.key} is missing from ${failure.location}`);
  }
  if (name === 'NoSuchBucket') {
    return make('E_REPO_NOT_FOUND', `bucket ${failure.bucket} does not exist at ${failure.location}; create it first (e.g. aws s3 mb s3://${failure.bucket})`);
  }
  if (name === 'QuotaExceeded') return make('E_NO_SPACE', `no space left to ${failure.action} ${object}: the storage quota is exceeded`);
  if (name === 'CredentialsProviderError') {
    return make('E_USAGE', `no S3 credentials for ${failure.location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (~/.aws/credentials)`);
  }
  if (NO_ACCESS.has(name) || status === 403) {
    return make('E_BACKEND_IO', `access denied to ${object} (${name || 'HTTP 403'}): check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and the bucket's policy`);
  }
  const code = info.code ?? '';
  if (name === 'TimeoutError' || code === 'ETIMEDOUT') {
    return make('E_BACKEND_IO', `cannot ${failure.action} ${object}: ${failure.location} did not answer in time (retried)`);
  }
  if (UNREACHABLE.has(code) || (error instanceof AggregateError && error.errors.some((e) => UNREACHABLE.has((e as { code?: string }).code ?? '')))) {
    return make('E_BACKEND_IO', `cannot ${failure.action} ${object}: ${failure.location} cannot be reached (${code || 'connection failed'}, retried)`);
  }
  const reason = (info.message ?? '').split('\n')[0] || name || String(error);
  return make('E_BACKEND_IO', `cannot ${failure.action} ${object}: ${status === undefined ? '' : `HTTP ${status} `}${name && !reason.includes(name) ? `${name}: ` : ''}${reason}`);
}
