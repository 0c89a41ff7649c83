/**
 * @module errors
 * Coffer's one error type. Everything a user can cause (a wrong passphrase, a missing image,
 * a damaged chunk, a full disk) is thrown as a {@link CofferError} with a stable `code`; the
 * CLI maps codes to exit codes once (`cli/exit-codes.ts`), the server will map them to HTTP
 * statuses once. Any other exception is a bug.
 */
export { CofferError, isCofferError, ERROR_CODES } from './coffer-error.js';
export type { ErrorCode, ErrorSubject } from './coffer-error.js';
