const KEY_PATTERN = /^[a-z0-9._-]+(\/[a-z0-9._-]+)*$/;

/**
 * Checks a backend key against the contract of {@link Backend} (`[a-z0-9._-]` segments joined
 * by `/`, no `.` or `..` segment) and returns it; a key that could escape the repository (or
 * its prefix in a bucket) is a bug in the caller: RangeError.
 */
export function checkedKey(key: string): string {
  if (!KEY_PATTERN.test(key) || key.split('/').some((part) => part === '.' || part === '..')) {
    throw new RangeError(`invalid backend key ${JSON.stringify(key)}`);
  }
  return key;
}
