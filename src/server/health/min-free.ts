/**
 * The `health.min-free` threshold: a percentage of the filesystem (`10%`) or an amount
 * (`20G`, powers of 1024); space is low when less than that is free for the server's user.
 */
import { CofferError } from '../../errors/index.js';
import { parseRate } from '../config/index.js';

export type MinFree = { readonly percent: number } | { readonly bytes: number };

/** @throws CofferError E_USAGE for anything else. */
export function parseMinFree(text: string): MinFree {
  const percent = /^(\d{1,3}(?:\.\d+)?)%$/.exec(text);
  if (percent !== null && Number(percent[1]) <= 100) return { percent: Number(percent[1]) };
  const bytes = parseRate(text);
  if (bytes !== undefined) return { bytes };
  throw new CofferError('E_USAGE', `health.min-free "${text}": give a percentage (10%) or an amount (20G)`);
}

/** Whether `free` of `total` bytes is under the threshold. */
export function spaceIsLow(free: number, total: number, min: MinFree): boolean {
  return 'percent' in min ? total > 0 && (free / total) * 100 < min.percent : free < min.bytes;
}
