/**
 * The planning model of a night's run (docs/scale.md, issue #10 item 5): from the inventory,
 * the change rate, the measured per-task and per-worker throughput and the limits, how long
 * the night takes and what bounds it. A pure function: no clock, no I/O.
 *
 * The night is the longest of these bounds, each the time one resource needs for the whole
 * night's work when every other resource is unlimited:
 *
 * | bound       | time                                                                 |
 * |-------------|----------------------------------------------------------------------|
 * | `slots`     | rounds × one VM's task time; rounds = ⌈VMs / slots⌉, slots = min(workers × tasks, hosts × per-host limit, global limit) — the source reads per host and the task slots |
 * | `host`      | the busiest host's VMs ÷ per-host limit, rounded up, × one VM's task time (uneven hosts) |
 * | `worker-cpu`| bytes read ÷ (workers × bytes a worker hashes, compresses and encrypts per second) |
 * | `network`   | (bytes read over the link + bytes stored) ÷ (workers × each worker's link) |
 * | `store-bytes` | bytes stored ÷ the object store's write rate                        |
 * | `store-puts`  | objects stored (bytes stored ÷ chunk size, plus per-VM metadata objects) ÷ PUTs per second |
 *
 * One VM's task time = the fixed cost of a task (queue hand-out, snapshot and bitmap set-up,
 * the task's process, its manifest) + its bytes read ÷ the rate one task reads its source at
 * (a disk, an NBD export, or a bandwidth rule). A full reads the VM's allocated bytes; an
 * incremental with change tracking reads only what changed (allocated × daily change rate).
 * Tasks are taken to be of the average size: a night of very unequal VMs ends later by up to
 * one large VM's task time (the last one started), which the model does not add.
 */

/** What the model needs. Sizes in bytes, rates in bytes (or objects) per second, times in seconds. */
export interface NightInputs {
  /** VMs backed up in the night. */
  readonly vms: number;
  /** Their allocated bytes in all. */
  readonly allocatedBytes: number;
  /** Share of the allocated bytes written each day (0.03 = 3 %). */
  readonly dailyChangeRate: number;
  /** Share of the VMs whose backup is a full tonight (new VMs, a chain restarted); 0 by default. */
  readonly fullShare?: number;
  /** Share of the bytes read that the store receives after dedup and compression (1 = all). */
  readonly storedShare?: number;
  readonly hosts: number;
  /** VMs on the busiest host (default: VMs spread evenly, ⌈vms / hosts⌉). */
  readonly busiestHostVms?: number;
  /** Backups of one host at once (default 1, the service's default). */
  readonly perHostLimit?: number;
  /** Backups at once across the site (default: no limit). */
  readonly globalLimit?: number;
  readonly workers: number;
  /** Tasks each worker runs at once (`--tasks`). */
  readonly tasksPerWorker: number;
  /** Fixed cost of one VM's task, seconds (measured: the benchmark's seconds per task at zero bytes). */
  readonly taskOverheadS: number;
  /** The rate one task reads its source at. */
  readonly taskReadBytesPerSecond: number;
  /** Bytes one worker hashes, compresses and encrypts per second with all its cores (default: unlimited). */
  readonly workerCpuBytesPerSecond?: number;
  /** Each worker's network link (default: unlimited). */
  readonly workerLinkBytesPerSecond?: number;
  /** Whether source reads cross the worker's link (a disk on another machine, NBD over the network). Default true. */
  readonly readsCrossLink?: boolean;
  /** The object store's write rate (default: unlimited). */
  readonly storeBytesPerSecond?: number;
  /** The object store's PUTs per second (default: unlimited). */
  readonly storePutsPerSecond?: number;
  /** Bytes per stored object (Coffer format v1: a 256 KiB chunk, compressed); default 256 KiB. */
  readonly objectBytes?: number;
  /** Objects per VM besides chunks (index pages, manifest); default 3. */
  readonly objectsPerVm?: number;
  /** The backup window, seconds (for `fits`); default 8 h. */
  readonly windowS?: number;
}

export type Bottleneck = 'slots' | 'host' | 'worker-cpu' | 'network' | 'store-bytes' | 'store-puts';

/** What the model predicts. */
export interface NightPrediction {
  /** The night's length, seconds: the largest bound. */
  readonly nightS: number;
  /** The resource whose bound is the night. */
  readonly bottleneck: Bottleneck;
  /** Every bound, seconds. */
  readonly bounds: Readonly<Record<Bottleneck, number>>;
  /** Backups that run at once at most. */
  readonly slots: number;
  /** One average VM's task time, seconds. */
  readonly taskS: number;
  readonly bytesRead: number;
  readonly bytesStored: number;
  /** Whether the night ends within the window. */
  readonly fits: boolean;
  /** VMs per minute and bytes read per second over the night. */
  readonly vmsPerMinute: number;
  readonly readBytesPerSecond: number;
}

const KiB = 1024;

/**
 * Predicts a night's run.
 * @example predictNight({ vms: 1400, allocatedBytes: 60e12, dailyChangeRate: 0.03, hosts: 60, workers: 6, tasksPerWorker: 4, taskOverheadS: 20, taskReadBytesPerSecond: 150e6 })
 * @throws RangeError for a count below 1 or a negative size or rate.
 */
export function predictNight(inputs: NightInputs): NightPrediction {
  const positive = ['vms', 'hosts', 'workers', 'tasksPerWorker', 'taskReadBytesPerSecond'] as const;
  for (const key of positive) if (!(inputs[key] > 0)) throw new RangeError(`planning model: ${key} must be above 0, not ${inputs[key]}`);
  for (const key of ['allocatedBytes', 'dailyChangeRate', 'taskOverheadS'] as const) if (!(inputs[key] >= 0)) throw new RangeError(`planning model: ${key} must be 0 or more, not ${inputs[key]}`);
  const fullShare = inputs.fullShare ?? 0;
  const storedShare = inputs.storedShare ?? 1;
  const perHost = inputs.perHostLimit ?? 1;
  const unlimited = Number.POSITIVE_INFINITY;

  const bytesRead = inputs.allocatedBytes * (fullShare + (1 - fullShare) * inputs.dailyChangeRate);
  const bytesStored = bytesRead * storedShare;
  const taskS = inputs.taskOverheadS + bytesRead / inputs.vms / inputs.taskReadBytesPerSecond;
  const slots = Math.min(inputs.workers * inputs.tasksPerWorker, inputs.hosts * perHost, inputs.globalLimit ?? unlimited);
  const busiest = inputs.busiestHostVms ?? Math.ceil(inputs.vms / inputs.hosts);
  const objects = bytesStored / (inputs.objectBytes ?? 256 * KiB) + inputs.vms * (inputs.objectsPerVm ?? 3);
  const linkBytes = (inputs.readsCrossLink ?? true ? bytesRead : 0) + bytesStored;
  const over = (amount: number, rate: number | undefined) => (rate === undefined || rate === unlimited ? 0 : amount / rate);

  const bounds: Record<Bottleneck, number> = {
    slots: Math.ceil(inputs.vms / slots) * taskS,
    host: Math.ceil(busiest / perHost) * taskS,
    'worker-cpu': over(bytesRead, inputs.workerCpuBytesPerSecond === undefined ? undefined : inputs.workers * inputs.workerCpuBytesPerSecond),
    network: over(linkBytes, inputs.workerLinkBytesPerSecond === undefined ? undefined : inputs.workers * inputs.workerLinkBytesPerSecond),
    'store-bytes': over(bytesStored, inputs.storeBytesPerSecond),
    'store-puts': over(objects, inputs.storePutsPerSecond),
  };
  let bottleneck: Bottleneck = 'slots';
  for (const key of Object.keys(bounds) as Bottleneck[]) if (bounds[key] > bounds[bottleneck]) bottleneck = key;
  const nightS = bounds[bottleneck];
  return {
    nightS,
    bottleneck,
    bounds,
    slots,
    taskS,
    bytesRead,
    bytesStored,
    fits: nightS <= (inputs.windowS ?? 8 * 3600),
    vmsPerMinute: nightS === 0 ? 0 : inputs.vms / (nightS / 60),
    readBytesPerSecond: nightS === 0 ? 0 : bytesRead / nightS,
  };
}

/**
 * The fewest workers with which the night fits its window, trying 1..`maxWorkers`; undefined
 * when none does (the bottleneck is then not the workers: hosts, the store or the network).
 */
export function workersNeeded(inputs: Omit<NightInputs, 'workers'>, maxWorkers = 1000): { workers: number; prediction: NightPrediction } | undefined {
  for (let workers = 1; workers <= maxWorkers; workers++) {
    const prediction = predictNight({ ...inputs, workers });
    if (prediction.fits) return { workers, prediction };
  }
  return undefined;
}
