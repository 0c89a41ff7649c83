import { CofferError } from '../../errors/index.js';
import type { Backend } from './backend.js';
import { copyBytes } from '../../native/index.js';

/**
 * `length` bytes of object `key` from `offset`: the backend's ranged read when it has one,
 * else the whole object, cut (a backend without {@link Backend.getRange} still reads packs).
 * With `into` (at least `length` bytes), the answer is a view of `into[0, length)`: read
 * straight into it where the backend can, else copied there. `E_CORRUPT_OBJECT` when the
 * object is shorter than the range.
 */
export async function readRange(backend: Backend, key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 1) throw new RangeError(`bad range ${offset}+${length} of ${key}`);
  if (into !== undefined && into.length < length) throw new RangeError(`a buffer of ${into.length} bytes cannot hold the range ${offset}+${length} of ${key}`);
  let data: Buffer;
  if (backend.getRange !== undefined) data = await backend.getRange(key, offset, length, into);
  else {
    const whole = await backend.get(key);
    if (whole.length < offset + length) throw shortObject(key, whole.length, offset, length);
    data = whole.subarray(offset, offset + length);
    if (into === undefined) return Buffer.from(data);
  }
  if (into === undefined) return data;
  const view = Buffer.from(into.buffer, into.byteOffset, length);
  if (data.buffer !== view.buffer || data.byteOffset !== view.byteOffset) copyBytes(view, data.subarray(0, view.length));
  return view;
}

/** The error of a range beyond the object's end. */
export function shortObject(key: string, size: number, offset: number, length: number): CofferError {
  return new CofferError('E_CORRUPT_OBJECT', `object ${key} holds ${size} bytes, fewer than the ${length} asked for at offset ${offset}`, { subject: { object: key } });
}
