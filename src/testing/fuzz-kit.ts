/**
 * What every bounded fuzz test shares: a seedable random source (so a failing seed replays)
 * and a deadline per operation (so a hang fails the test instead of stalling the suite).
 */

/** xorshift32 in [0, 1): small, seedable, good enough to pick bytes to break. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/** `work`, or an Error naming `what` once `ms` have passed (the timer is always cleared). */
export async function withDeadline<T>(what: string, work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
