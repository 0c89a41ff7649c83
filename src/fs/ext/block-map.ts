/**
 * How a file's logical blocks map to the filesystem's blocks, whatever the format (extent
 * tree, indirect blocks): a mapper yields runs covering `[start, end)` in order, with no gap.
 */
export interface BlockRun {
  readonly logical: number;
  readonly count: number;
  /** First filesystem block of the run, or null for a hole or an unwritten extent (zeros). */
  readonly physical: number | null;
}

/** Yields the runs of logical blocks `[start, end)`. Throws `E_FS_CORRUPT` on a damaged map. */
export type BlockMapper = (start: number, end: number) => AsyncGenerator<BlockRun>;

/**
 * Joins neighbouring runs that continue each other (holes after holes, blocks following
 * blocks) and fills the gaps the source leaves with holes, so the result covers
 * `[start, end)` exactly. `source` yields runs in increasing logical order inside that range.
 */
export async function* coalesce(source: AsyncIterable<BlockRun>, start: number, end: number): AsyncGenerator<BlockRun> {
  let pending: BlockRun | undefined;
  let cursor = start;
  const push = function* (run: BlockRun): Generator<BlockRun> {
    if (run.count <= 0) return;
    if (pending !== undefined && pending.logical + pending.count === run.logical
      && (pending.physical === null ? run.physical === null : run.physical === pending.physical + pending.count)) {
      pending = { logical: pending.logical, count: pending.count + run.count, physical: pending.physical };
      return;
    }
    if (pending !== undefined) yield pending;
    pending = run;
  };
  for await (const run of source) {
    const from = Math.max(run.logical, cursor);
    const to = Math.min(run.logical + run.count, end);
    if (to <= from) continue;
    if (from > cursor) yield* push({ logical: cursor, count: from - cursor, physical: null });
    yield* push({ logical: from, count: to - from, physical: run.physical === null ? null : run.physical + (from - run.logical) });
    cursor = to;
  }
  if (cursor < end) yield* push({ logical: cursor, count: end - cursor, physical: null });
  if (pending !== undefined) yield pending;
}
