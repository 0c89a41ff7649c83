/**
 * The shape of what a run measures, as written to `bench/results/<timestamp>.json`
 * (`version: 1`). Sizes are bytes, times seconds, RSS KiB.
 *
 * @module
 */
import type { ChainResult } from './chain.js';
import type { FilesResult } from './files.js';
import type { ServiceBenchResult } from './service.js';
import type { WorkersBenchResult } from './workers.js';
import type { FormatResult } from './formats.js';
import type { LiveResult, LiveTarget } from './live.js';
import type { OffsiteResult } from './offsite.js';
import type { PruneResult } from './prune.js';
import type { ToolName } from './config.js';
import type { TreeSize } from './measure.js';

/**
 * Steps in the order each tool runs them. `full-16g` is Coffer alone: a full backup of
 * the base's content in a 16 GiB sparse disk, into a fresh repository.
 */
export const STEPS = ['init', 'full', 'incr-scattered', 'incr-clustered', 'clone', 'restore', 'verify', 'full-16g'] as const;

/** A step's name. */
export type StepName = (typeof STEPS)[number];

/** One tool's measurement of one step. */
export interface StepResult {
  readonly tool: ToolName;
  readonly step: StepName;
  readonly wallS: number;
  readonly cpuS: number;
  readonly maxRssKiB: number;
  /** Repository size after the step. */
  readonly repo?: TreeSize;
  /** Repository growth during the step (after − before). */
  readonly added?: TreeSize;
  /** The tool's own account of the step (restic's summary, borg's stats, Coffer's JSON). */
  readonly reported?: Record<string, unknown>;
  /** Extra facts, e.g. the restored image's allocated size. */
  readonly note?: string;
  /** Set when the step failed; its numbers are then zero and not comparable. */
  readonly error?: string;
}

/** One target of the issue, checked against this run. */
export interface TargetCheck {
  /** What is compared, e.g. "full backup wall time". */
  readonly name: string;
  /** Unit of `coffer` and `reference`. */
  readonly unit: 's' | 'B' | 'KiB';
  /** Coffer's number. */
  readonly coffer: number | null;
  /** The number Coffer is compared with. */
  readonly reference: number | null;
  /** Where the reference comes from: a peer's name, "limit", or "coffer 4 GiB". */
  readonly referenceLabel: string;
  /** coffer / reference. */
  readonly ratio: number | null;
  /** The ratio must be at most this. */
  readonly limit: number;
  /** null when a number is missing (tool skipped or failed). */
  readonly pass: boolean | null;
}

/** The whole results file. */
export interface BenchReport {
  readonly version: 1;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: Record<string, unknown>;
  readonly config: Record<string, unknown>;
  readonly disks: Record<string, unknown>;
  readonly tools: Record<string, { version?: string; settings?: string; skipped?: string }>;
  readonly results: readonly StepResult[];
  readonly targets: readonly TargetCheck[];
  /** Disk formats against qemu-img (formats.ts). */
  readonly formats: readonly FormatResult[];
  /** The chain-aware incremental of a qcow2 overlay (chain.ts). */
  readonly chain?: ChainResult;
  /** Thirty daily backups, forget half, prune (prune.ts), unless skipped. */
  readonly prune?: PruneResult;
  /** A running QEMU VM and instant recovery (live.ts), unless skipped. */
  readonly live?: LiveResult & { targets: LiveTarget[] };
  /** Backup and restore over S3 against restic, and daily syncs to a bucket (offsite.ts), unless skipped. */
  readonly offsite?: OffsiteResult;
  /** Directory trees against restic and borg (files.ts), unless skipped. */
  readonly files?: FilesResult;
  /** The service: planning, a night's start, API latency and RSS (service.ts), unless skipped. */
  readonly service?: ServiceBenchResult;
  /** 1, 2 and 3 workers on PostgreSQL and the Ceph gateway (workers.ts), unless skipped. */
  readonly workers?: WorkersBenchResult;
}
