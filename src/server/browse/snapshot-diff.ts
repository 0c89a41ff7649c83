/**
 * Two snapshots compared for the API (GET …/snapshots/{id}/diff): restore's comparison
 * (diffSnapshotDisks, diffFileSnapshots, diffSnapshotVolumes: nothing reimplemented here)
 * answered as the document `coffer diff --json` prints, with the bounds a server needs. The
 * CLI streams every change to a pipe; an answer must fit in memory and in a client's patience:
 *
 * - **one page of changed paths**: the walk goes through the whole diff and counts every change,
 *   but keeps only those from `offset`, at most `limit` (`total`, `next`);
 * - **a time limit on the walk of files** (`deadline`): when it fires, the walk stops where it
 *   is and the answer says `timedOut`, with what was found so far (the counts then count that;
 *   the figures only a finished walk knows — bytes added and removed, trees read, problems —
 *   are left out). The disks' comparison (index pages only) is not limited;
 * - **at most `maxRanges` ranges per disk** (`rangeCount` says how many) and `maxProblems`
 *   problems per walk (`problemCount`).
 *
 * Paths are printable as every browse answer's are (`\xNN`, `pathBytes` beside: snapshot-browser.ts),
 * where the CLI's JSON keeps the decoded name; problems' paths and messages too.
 */
import { CofferError } from '../../errors/index.js';
import { printableName, printableText, printableWithBytes } from '../../names/index.js';
import type { Repository, Snapshot } from '../../repo/index.js';
import {
  countsRow,
  diffFileSnapshots,
  diffSnapshotDisks,
  diffSnapshotVolumes,
  emptyCounts,
  type ChangeCounts,
  type ContentChecks,
  type DiffProblem,
  type DiskDiff,
  type DisksDiff,
  type FilesDiffSummary,
  type PathChange,
  type VolumeDiffSink,
  type VolumeInfo,
} from '../../restore/index.js';

/** A compared snapshot, as the document names it. */
export interface SnapshotRef {
  id: string;
  shortId: string;
  vm: string;
  time: string;
}

/** A changed path, printable (`pathBytes`: its exact bytes in hex when `path` holds an escape). */
export interface ChangeJson {
  change: PathChange['change'];
  path: string;
  pathBytes?: string;
  type: string;
  was?: string;
  size?: number;
}

/** A problem of the walk, its path and message printable. */
export type ProblemJson = DiffProblem;

/** A disk of the comparison, its ranges cut at `maxRanges` (`rangeCount`: how many there are). */
export type DiskJson = DiskDiff | (Extract<DiskDiff, { ranges: unknown }> & { rangeCount: number });

/** A volume's comparison (`files=true`): as the CLI's, with this page's changes. */
export interface VolumeJson extends VolumeInfo {
  changes: ChangeJson[];
  counts?: ChangeCounts;
  bytesAdded?: number;
  bytesRemoved?: number;
  checks?: ContentChecks;
  problems?: ProblemJson[];
  problemCount?: number;
  /** False for the volume the time limit stopped in: its counts count what was walked. */
  complete: boolean;
}

/** Where the answer's page of changes stands, and what it left out. */
export interface DiffPaging {
  /** Changed paths found (all volumes): the whole diff's unless `timedOut`. */
  total: number;
  limit: number;
  offset: number;
  /** The `offset` of the next page; null when none was found after this one. */
  next: number | null;
  /** The walk of files stopped at the time limit. */
  timedOut: boolean;
  /** Something was left out: changes past this page, ranges or problems past their cap, or a time-out. */
  truncated: boolean;
}

export type SnapshotDiffDocument =
  | ({ kind: 'disks'; a: SnapshotRef; b: SnapshotRef; disks: DiskJson[]; totals: DisksDiff['totals']; volumes?: VolumeJson[] } & DiffPaging)
  | ({ kind: 'files'; a: SnapshotRef; b: SnapshotRef; changes: ChangeJson[]; counts: ChangeCounts; problems?: ProblemJson[]; problemCount?: number } & Partial<Omit<FilesDiffSummary, 'counts' | 'problems'>> & DiffPaging);

/** Options of {@link diffSnapshots}. */
export interface SnapshotDiffOptions {
  /** VM snapshots: compare the files of each volume too (file snapshots' paths are always compared). */
  files: boolean;
  /** VM snapshots: only this disk (a name, or a number in `b`). */
  disk?: string;
  /** The changed paths answered. */
  page: { offset: number; limit: number };
  /** Ranges listed per disk. */
  maxRanges: number;
  /** Problems listed per walk. */
  maxProblems: number;
  /** Stops the walk of files where it is; the answer says `timedOut`. */
  deadline: AbortSignal;
  /** Stops everything (the client went away): rejects with `E_INTERRUPTED`. */
  signal?: AbortSignal;
}

/**
 * What changed from snapshot `a` to snapshot `b`, bounded as the module doc says. Throws
 * `E_USAGE` when they are not of one kind (a VM snapshot and a file snapshot) or for `disk`
 * on file snapshots, `E_DISK_NOT_FOUND` for a disk neither has, and what the repository
 * throws (damage).
 */
export async function diffSnapshots(repo: Repository, a: Snapshot, b: Snapshot, options: SnapshotDiffOptions): Promise<SnapshotDiffDocument> {
  if ((a.files === undefined) !== (b.files === undefined)) {
    const kind = (s: Snapshot) => (s.files !== undefined ? 'a file snapshot' : 'a VM snapshot');
    throw new CofferError('E_USAGE', `${a.id.slice(0, 8)} is ${kind(a)} and ${b.id.slice(0, 8)} ${kind(b)}: compare snapshots of one kind`);
  }
  if (a.files !== undefined) {
    if (options.disk !== undefined) throw new CofferError('E_USAGE', 'disk: file snapshots have no disks');
    return fileSnapshots(repo, a, b, options);
  }
  return vmSnapshots(repo, a, b, options);
}

async function fileSnapshots(repo: Repository, a: Snapshot, b: Snapshot, options: SnapshotDiffOptions): Promise<SnapshotDiffDocument> {
  const page = new ChangePage(options.page);
  const counts = emptyCounts();
  const changes: ChangeJson[] = [];
  let summary: FilesDiffSummary | undefined;
  const timedOut = await untilDeadline(options, async (signal) => {
    summary = await diffFileSnapshots(repo, a, b, {
      signal,
      onChange: (change) => {
        countsRow(counts, change.type)[change.change] += 1;
        const shown = page.take(change);
        if (shown !== undefined) changes.push(shown);
      },
    });
  });
  const head = { kind: 'files' as const, a: snapshotRef(a), b: snapshotRef(b), changes, counts };
  if (summary === undefined) return { ...head, ...page.paging(timedOut, false) };
  const { counts: _counts, problems, ...figures } = summary;
  const bounded = boundedProblems(problems, options.maxProblems);
  return { ...head, ...figures, ...bounded, ...page.paging(timedOut, bounded.problemCount > bounded.problems.length) };
}

async function vmSnapshots(repo: Repository, a: Snapshot, b: Snapshot, options: SnapshotDiffOptions): Promise<SnapshotDiffDocument> {
  const disks = await diffSnapshotDisks(repo, a, b, { ...(options.disk !== undefined ? { disk: options.disk } : {}), ...(options.signal !== undefined ? { signal: options.signal } : {}) });
  let rangesCut = false;
  const diskJson = disks.disks.map((d): DiskJson => {
    if (!('ranges' in d)) return d;
    rangesCut ||= d.ranges.length > options.maxRanges;
    return { ...d, ranges: d.ranges.slice(0, options.maxRanges), rangeCount: d.ranges.length };
  });
  const page = new ChangePage(options.page);
  const head = { kind: 'disks' as const, a: snapshotRef(a), b: snapshotRef(b), disks: diskJson, totals: disks.totals };
  if (!options.files) return { ...head, ...page.paging(false, rangesCut) };
  const volumes: VolumeJson[] = [];
  let problemsCut = false;
  let current: VolumeJson | undefined;
  const sink: VolumeDiffSink = {
    start: (info) => {
      current = { ...info, ...(info.problem !== undefined ? { problem: printableText(info.problem) } : {}), changes: [], counts: emptyCounts(), complete: false };
      volumes.push(current);
    },
    change: (change) => {
      if (current === undefined) return;
      countsRow(current.counts as ChangeCounts, change.type)[change.change] += 1;
      const shown = page.take(change);
      if (shown !== undefined) current.changes.push(shown);
    },
    end: (result) => {
      if (current === undefined) return;
      const bounded = boundedProblems(result.problems, options.maxProblems);
      problemsCut ||= bounded.problemCount > bounded.problems.length;
      if (result.counts === undefined) delete current.counts;
      else current.counts = result.counts;
      Object.assign(current, { bytesAdded: result.bytesAdded, bytesRemoved: result.bytesRemoved, ...(result.checks !== undefined ? { checks: result.checks } : {}), ...bounded, complete: true });
    },
  };
  const timedOut = await untilDeadline(options, (signal) => diffSnapshotVolumes(repo, a, b, disks, { ...(options.disk !== undefined ? { disk: options.disk } : {}), sink, signal }));
  return { ...head, volumes, ...page.paging(timedOut, rangesCut || problemsCut) };
}

/** Counts the changes of a walk and keeps those of one page. */
class ChangePage {
  private seen = 0;

  constructor(private readonly page: { offset: number; limit: number }) {}

  /** The change in its printable form when it falls in the page; counted either way. */
  take(change: PathChange): ChangeJson | undefined {
    const index = this.seen++;
    if (index < this.page.offset || index >= this.page.offset + this.page.limit) return undefined;
    return { change: change.change, ...printableWithBytes('path', change.path), type: change.type, ...(change.was !== undefined ? { was: change.was } : {}), ...(change.size !== undefined ? { size: change.size } : {}) };
  }

  paging(timedOut: boolean, cut: boolean): DiffPaging {
    const end = this.page.offset + this.page.limit;
    const next = this.seen > end ? end : null;
    return { total: this.seen, limit: this.page.limit, offset: this.page.offset, next, timedOut, truncated: timedOut || cut || next !== null };
  }
}

/**
 * Runs a walk under the deadline and the caller's signal together; true when the deadline
 * stopped it (the walk's `E_INTERRUPTED`), rethrowing anything else, and the interruption
 * itself when the caller's signal fired.
 */
async function untilDeadline(options: SnapshotDiffOptions, walk: (signal: AbortSignal) => Promise<unknown>): Promise<boolean> {
  const signal = options.signal === undefined ? options.deadline : AbortSignal.any([options.deadline, options.signal]);
  try {
    await walk(signal);
    return false;
  } catch (error) {
    if (error instanceof CofferError && error.code === 'E_INTERRUPTED' && options.deadline.aborted && options.signal?.aborted !== true) return true;
    throw error;
  }
}

function boundedProblems(problems: readonly DiffProblem[], max: number): { problems: ProblemJson[]; problemCount: number } {
  return { problems: problems.slice(0, max).map((p) => ({ path: printableName(p.path), code: p.code, message: printableText(p.message) })), problemCount: problems.length };
}

function snapshotRef(s: Snapshot): SnapshotRef {
  return { id: s.id, shortId: s.id.slice(0, 8), vm: s.vm, time: new Date(s.time).toISOString() };
}
