import { RateLimiter } from '../concurrency/index.js';
import { CofferError } from '../errors/index.js';
import { RateLimitedBackend, type Backend, type BandwidthLimits } from '../repo/index.js';
import { parseSize } from './format.js';

/** The options that limit a command's bandwidth (sync, backup, restore). */
export interface BandwidthOptions {
  /** Bytes per second sent to repositories, e.g. `20M` (MiB/s), `500K`, `1048576`. */
  limitUpload?: string;
  /** Bytes per second received from repositories. */
  limitDownload?: string;
}

/** A rate such as `20M` (20 MiB/s), `500K`, `1G` or `65536` (`/s` may follow), in bytes per second. */
export function parseRate(text: string, option: string): number {
  const rate = parseSize(text.replace(/\/s$/i, ''));
  if (!Number.isFinite(rate) || rate < 1024) throw new CofferError('E_USAGE', `${option} ${text}: give bytes per second of at least 1K, e.g. 20M or 500K`);
  return rate;
}

/**
 * The limiters the options ask for. One limiter per direction for the whole command, shared
 * by every repository it touches, so `--limit-upload 20M` is the process's total.
 */
export function bandwidthLimits(options: BandwidthOptions): BandwidthLimits {
  return {
    ...(options.limitUpload !== undefined ? { upload: new RateLimiter({ bytesPerSecond: parseRate(options.limitUpload, '--limit-upload') }) } : {}),
    ...(options.limitDownload !== undefined ? { download: new RateLimiter({ bytesPerSecond: parseRate(options.limitDownload, '--limit-download') }) } : {}),
  };
}

/** `backend` held to `limits` (itself when there are none). */
export function limitBackend(backend: Backend, limits: BandwidthLimits, signal: AbortSignal): Backend {
  return limits.upload === undefined && limits.download === undefined ? backend : new RateLimitedBackend(backend, limits, signal);
}
