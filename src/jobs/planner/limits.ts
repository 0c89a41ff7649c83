/**
 * The layered concurrency limits on VM backup tasks, and the counter that checks them. A task
 * starts only when every layer allows it: global, per host, per datastore, per repository and
 * per job. Each layer is a table: a default for every key (a host name, a datastore …) and
 * overrides for some keys.
 */
import { CofferError } from '../../errors/index.js';

/**
 * Backups on one hypervisor at a time by default: the rule experienced administrators apply
 * ("only one virtual machine is being backed up on any physical system at one time", issue #8),
 * because backups compete with production for the host's CPU and I/O.
 */
export const DEFAULT_PER_HOST_LIMIT = 1;

/** A limit per key: `default` for every key (undefined: unlimited), `overrides` for some. */
export interface LimitTable {
  readonly default?: number;
  readonly overrides?: Readonly<Record<string, number>>;
}

/**
 * How many backup tasks may run at once, layer by layer. A limit is a whole number ≥ 0
 * (0 holds every task back, e.g. a host in maintenance) or `Infinity`; undefined is unlimited,
 * except per host, where it is {@link DEFAULT_PER_HOST_LIMIT}.
 */
export interface ConcurrencyLimits {
  readonly global?: number;
  readonly host?: LimitTable;
  readonly datastore?: LimitTable;
  readonly repository?: LimitTable;
  readonly job?: LimitTable;
}

/** Where a task runs and what it uses: the keys the limits are counted by. */
export interface TaskPlacement {
  /** The hypervisor the VM runs on. */
  readonly host: string;
  /** The storage the VM's disks live on, if known (no per-datastore limit applies otherwise). */
  readonly datastore?: string;
  /** The repository the backup writes to. */
  readonly repository: string;
  /** The job the task belongs to. */
  readonly job: string;
}

/** The layers, in the order a blocked task names the first one that holds it back. */
export const LAYERS = ['global', 'host', 'datastore', 'repository', 'job'] as const;
/** One layer of {@link ConcurrencyLimits}. */
export type Layer = (typeof LAYERS)[number];

/**
 * Checks that every limit is a whole number ≥ 0 or Infinity.
 * @throws CofferError E_USAGE naming the bad limit.
 */
export function validateLimits(limits: ConcurrencyLimits): void {
  const check = (name: string, value: number | undefined) => {
    if (value === undefined || value === Infinity) return;
    if (!Number.isInteger(value) || value < 0) throw new CofferError('E_USAGE', `the concurrency limit ${name} must be a whole number of at least 0, not ${value}`);
  };
  check('global', limits.global);
  for (const layer of ['host', 'datastore', 'repository', 'job'] as const) {
    const table = limits[layer];
    check(`${layer}.default`, table?.default);
    for (const [key, value] of Object.entries(table?.overrides ?? {})) check(`${layer}.${key}`, value);
  }
}

/**
 * Counts the tasks running per layer and key, and says whether one more may start.
 * Not shared between plans: each plan builds its own from the tasks running.
 */
export class LimitCounter {
  private global = 0;
  private readonly counts = { host: new Map<string, number>(), datastore: new Map<string, number>(), repository: new Map<string, number>(), job: new Map<string, number>() };

  constructor(private readonly limits: ConcurrencyLimits) {}

  /** The first layer that does not allow one more task of this placement, or undefined if all do. */
  blockingLayer(task: TaskPlacement): Layer | undefined {
    if (this.global >= (this.limits.global ?? Infinity)) return 'global';
    for (const layer of ['host', 'datastore', 'repository', 'job'] as const) {
      const key = task[layer];
      if (key === undefined) continue;
      if ((this.counts[layer].get(key) ?? 0) >= this.limitOf(layer, key)) return layer;
    }
    return undefined;
  }

  /** Whether the global limit is reached (no task of any placement may start). */
  get full(): boolean {
    return this.global >= (this.limits.global ?? Infinity);
  }

  /** Counts one more running task. */
  add(task: TaskPlacement): void {
    this.global++;
    for (const layer of ['host', 'datastore', 'repository', 'job'] as const) {
      const key = task[layer];
      if (key !== undefined) this.counts[layer].set(key, (this.counts[layer].get(key) ?? 0) + 1);
    }
  }

  /** Counts one task fewer (it ended). */
  remove(task: TaskPlacement): void {
    this.global--;
    for (const layer of ['host', 'datastore', 'repository', 'job'] as const) {
      const key = task[layer];
      if (key !== undefined) this.counts[layer].set(key, (this.counts[layer].get(key) ?? 0) - 1);
    }
  }

  private limitOf(layer: 'host' | 'datastore' | 'repository' | 'job', key: string): number {
    const table = this.limits[layer];
    const override = table?.overrides !== undefined && Object.hasOwn(table.overrides, key) ? table.overrides[key] : undefined;
    return override ?? table?.default ?? (layer === 'host' ? DEFAULT_PER_HOST_LIMIT : Infinity);
  }
}
