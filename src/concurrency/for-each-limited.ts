/**
 * Runs `fn` over `items` (sync or async iterable) with at most `limit` calls in flight.
 * Stops taking new items after the first failure and rethrows it once the calls in flight
 * have settled, so no work outlives the call.
 */
export async function forEachLimited<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  let pulling: Promise<unknown> = Promise.resolve();
  const next = async (): Promise<IteratorResult<T>> => {
    // Async iterators must not be pulled concurrently: chain the pulls.
    const result = pulling.then(() => iterator.next());
    pulling = result.catch(() => undefined);
    return result;
  };
  const lane = async () => {
    while (failure === undefined) {
      let item: IteratorResult<T>;
      try {
        item = await next();
      } catch (error) {
        failure ??= { error };
        return;
      }
      if (item.done) return;
      try {
        await fn(item.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, lane));
  if (failure !== undefined) {
    await iterator.return?.();
    throw failure.error;
  }
}
