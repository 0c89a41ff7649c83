/**
 * The floor of the main comparison: the least CPU time each step of Coffer's sequence can
 * cost on this machine, whatever the code around it, and so the least wall time with every
 * CPU busy. It is the CPU cost of the work no implementation of the format can skip — read
 * the data, hash it (the chunk id is a keyed MAC of the plaintext), compress what is new
 * (zstd level 3, the level the peers are given), encrypt and write it; for a restore and a
 * verify the same in reverse — at the rates {@link PrimitiveRates} measured on this CPU.
 *
 * The wall-time floor is that CPU time divided by the CPU count (perfect parallelism, no
 * I/O wait): a bound below which no change to Coffer's code can go, so a target whose
 * limit × the peer's wall time is under it cannot be met on this machine.
 *
 * @module
 */
import type { StepName, StepResult } from './results.js';

/** Throughputs of the unavoidable work, in bytes per CPU-second (one core). */
export interface PrimitiveRates {
  /** Reading from the page cache into buffers. */
  readonly read: number;
  /** HMAC-SHA256 (the chunk id) of plaintext. */
  readonly mac: number;
  /** zstd level 3 compression, per plaintext byte. */
  readonly compress: number;
  /** zstd decompression, per plaintext byte. */
  readonly decompress: number;
  /** AES-256-GCM, per stored (compressed) byte. */
  readonly encrypt: number;
  /** Writing buffers into a file (the page cache). */
  readonly write: number;
}

/** The bytes each primitive must process in one step. */
export interface StepWork {
  readonly read: number;
  readonly mac: number;
  readonly compress: number;
  readonly decompress: number;
  readonly encrypt: number;
  readonly write: number;
}

/** One step's floor against what Coffer and the best peer measured. */
export interface StepFloor {
  readonly step: StepName;
  readonly work: StepWork;
  /** CPU-seconds the work costs at the measured rates. */
  readonly floorCpuS: number;
  /** floorCpuS / cpus. */
  readonly floorWallS: number;
  readonly cofferWallS: number;
  readonly cofferCpuS: number;
  readonly peerWallS: number;
  /** floorWallS / peerWallS: the best ratio any code could reach here. */
  readonly floorRatio: number;
  /** CPUs needed for the target at the floor: floorCpuS / (limit × peerWallS). */
  readonly cpusForTargetAtFloor: number;
  /** CPUs needed for the target at Coffer's measured CPU time. */
  readonly cpusForTargetAsMeasured: number;
}

const NO_WORK: StepWork = { read: 0, mac: 0, compress: 0, decompress: 0, encrypt: 0, write: 0 };

function figure(step: StepResult | undefined, key: string): number {
  const value = step?.reported?.[key];
  return typeof value === 'number' ? value : 0;
}

/**
 * What each step must do, from Coffer's own figures in the run (`bytesRead`, `bytesNew`,
 * `bytesStored` of each backup). A restore reads back the data the last backup of `vm1`
 * holds; a verify reads every stored byte and decodes every chunk stored by the run.
 */
export function stepWork(results: readonly StepResult[], step: StepName): StepWork {
  const coffer = (name: StepName) => results.find((r) => r.tool === 'coffer' && r.step === name && r.error === undefined);
  switch (step) {
    case 'full':
    case 'incr-scattered':
    case 'incr-clustered':
    case 'clone': {
      const r = coffer(step);
      const read = figure(r, 'bytesRead');
      const stored = figure(r, 'bytesStored');
      return { read, mac: read, compress: figure(r, 'bytesNew'), decompress: 0, encrypt: stored, write: stored };
    }
    case 'restore': {
      const full = coffer('full');
      const plaintext = figure(coffer('incr-clustered'), 'bytesRead');
      const compression = figure(full, 'bytesNew') > 0 ? figure(full, 'bytesStored') / figure(full, 'bytesNew') : 1;
      const stored = plaintext * compression;
      return { read: stored, mac: plaintext, compress: 0, decompress: plaintext, encrypt: stored, write: plaintext };
    }
    case 'verify': {
      const backups: StepName[] = ['full', 'incr-scattered', 'incr-clustered', 'clone'];
      const plaintext = backups.reduce((sum, name) => sum + figure(coffer(name), 'bytesNew'), 0);
      const stored = backups.reduce((sum, name) => sum + figure(coffer(name), 'bytesStored'), 0);
      return { read: stored, mac: plaintext, compress: 0, decompress: plaintext, encrypt: stored, write: 0 };
    }
    default:
      return NO_WORK;
  }
}

/** CPU-seconds the work costs at these rates. */
export function cpuSeconds(work: StepWork, rates: PrimitiveRates): number {
  return (
    work.read / rates.read +
    work.mac / rates.mac +
    work.compress / rates.compress +
    work.decompress / rates.decompress +
    work.encrypt / rates.encrypt +
    work.write / rates.write
  );
}

/** The floor of one step, or undefined when Coffer or both peers lack it in the run. */
export function stepFloor(
  results: readonly StepResult[],
  step: StepName,
  limit: number,
  rates: PrimitiveRates,
  cpus: number,
): StepFloor | undefined {
  const ok = (r: StepResult) => r.step === step && r.error === undefined;
  const coffer = results.find((r) => r.tool === 'coffer' && ok(r));
  const peers = results.filter((r) => r.tool !== 'coffer' && ok(r)).map((r) => r.wallS);
  if (coffer === undefined || peers.length === 0) return undefined;
  const peerWallS = Math.min(...peers);
  const work = stepWork(results, step);
  const floorCpuS = cpuSeconds(work, rates);
  const floorWallS = floorCpuS / cpus;
  const budget = limit * peerWallS;
  return {
    step,
    work,
    floorCpuS,
    floorWallS,
    cofferWallS: coffer.wallS,
    cofferCpuS: coffer.cpuS,
    peerWallS,
    floorRatio: floorWallS / peerWallS,
    cpusForTargetAtFloor: floorCpuS / budget,
    cpusForTargetAsMeasured: coffer.cpuS / budget,
  };
}
