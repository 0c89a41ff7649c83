import { CofferError } from '../../errors/index.js';
import type { Backend } from './backend.js';

/**
 * `length` bytes of object `key` from `offset`: the backend's ranged read when it has one,
 * else the whole object, cut (a backend without {@link Backend.getRange} still reads packs).
 * `E_CORRUPT_OBJECT` when the object is shorter than the range.
 */
export async function readRange(backend: Backend, key: string, offset: number, length: number): Promise<Buffer> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 1) throw new RangeError(`bad range ${offset}+${length} of ${key}`);
  if (backend.getRange !== undefined) return backend.getRange(key, offset, length);
  const whole = await backend.get(key);
  if (whole.length < offset + length) throw shortObject(key, whole.length, offset, length);
  return Buffer.from(whole.subarray(offset, offset + length));
}

/** The error of a range beyond the object's end. */
export function shortObject(key: string, size: number, offset: number, length: number): CofferError {
  return new CofferError('E_CORRUPT_OBJECT', `object ${key} holds ${size} bytes, fewer than the ${length} asked for at offset ${offset}`, { subject: { object: key } });
}
