/**
 * Puts that run behind the pipeline: a block's buffer is released once its chunk is sealed,
 * and the sealed bytes go up while the next blocks are read, hashed and sealed. Without it a
 * group of blocks held its read buffer until every PUT answered, so on S3 the reading and the
 * workers waited on round trips (2026-11-26, offsite benchmark: 4 requests in flight on
 * average, workers idle 60% of the time).
 *
 * At most `limit` uploads run at once ({@link start} waits for a free slot, which is what
 * bounds the sealed bytes held: `limit` × a sealed chunk). The first failure is kept;
 * {@link start} and {@link drain} throw it, so the pipeline stops feeding more and the backup
 * fails before anything refers to a chunk that was not stored.
 */
export class UploadQueue {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`an upload queue needs a limit of at least 1, not ${limit}`);
  }

  /** Starts `upload` once fewer than `limit` run; resolves when it has started, not finished. */
  async start(upload: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit && this.failure === undefined) await Promise.race(this.running);
    if (this.failure !== undefined) throw this.failure.error;
    const task: Promise<void> = upload()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(task));
    this.running.add(task);
  }

  /** Waits for every started upload; throws the first failure, if any. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
    if (this.failure !== undefined) throw this.failure.error;
  }
}
