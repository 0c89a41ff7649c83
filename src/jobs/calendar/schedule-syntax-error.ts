import { CofferError } from '../../errors/index.js';

/**
 * The error for a schedule that does not parse: E_USAGE, one line, naming the 1-based
 * character position of the part at fault, e.g.
 * `invalid schedule "mon..fri 25:00" at position 10: hour 25 is outside 0..23`.
 */
export function scheduleSyntaxError(text: string, position: number, why: string): CofferError {
  return new CofferError('E_USAGE', `invalid schedule "${text}" at position ${position + 1}: ${why}`);
}
