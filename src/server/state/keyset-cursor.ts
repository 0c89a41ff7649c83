/**
 * Keyset paging for lists in newest-first order (`time` descending, then `id` descending):
 * the next page starts strictly after the last row of this one, so a page costs a seek in an
 * index on (`time`, `id`) however deep it is, and rows added meanwhile (newer ones, on top)
 * never shift a row into a second page or out of every page.
 *
 * The cursor given to clients is opaque: `base64url(JSON [time, id])`. A cursor that does not
 * decode is refused with E_USAGE (the API maps it to 400).
 */
import { CofferError } from '../../errors/index.js';

/** Where the previous page ended: the last row's time (ms since the epoch) and id. */
export interface KeysetPosition {
  time: number;
  id: string;
}

export function encodeCursor(position: KeysetPosition): string {
  return Buffer.from(JSON.stringify([position.time, position.id]), 'utf8').toString('base64url');
}

/** @throws CofferError E_USAGE for a cursor this code did not make. */
export function decodeCursor(cursor: string): KeysetPosition {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && Number.isSafeInteger(value[0]) && typeof value[1] === 'string' && value[1].length <= 200) {
      return { time: value[0] as number, id: value[1] };
    }
  } catch {
    // falls through to the refusal
  }
  throw new CofferError('E_USAGE', `not a cursor of this list: ${JSON.stringify(cursor.slice(0, 80))} (pass the \`next\` of the previous page)`);
}
