import type { CofferError } from '../../errors/index.js';
import { fsCorrupt } from '../fs-errors.js';
import type { FatTable } from './fat-table.js';

/**
 * A cluster chain as runs of consecutive clusters: run i covers clusters
 * `starts[i] .. starts[i] + lengths[i] - 1`, and the chain's clusters in order are the runs
 * in order. `error` is set when the chain ended before it should have (a free, bad or
 * out-of-range entry): the runs then hold what could be followed.
 */
export interface ClusterChain {
  readonly starts: readonly number[];
  readonly lengths: readonly number[];
  /** Clusters in the chain (the sum of `lengths`). */
  readonly clusters: number;
  /** True when the chain went on past `limit` clusters (it was not followed further). */
  readonly truncated: boolean;
  readonly error?: CofferError;
}

/**
 * Follows the chain from `first` for at most `limit` clusters. A loop is E_FS_CORRUPT
 * (thrown): since an entry names one successor, revisiting a cluster means a cycle, and a
 * cycle jumps back at least once per lap, so within two laps a run starts where another
 * started; the run starts seen are kept to notice it, and `limit` bounds the walk anyway.
 * `what` names the chain's owner in messages.
 */
export async function followChain(fat: FatTable, first: number, limit: number, what: string): Promise<ClusterChain> {
  const starts: number[] = [];
  const lengths: number[] = [];
  const runStarts = new Set<number>();
  let clusters = 0;
  let current = first;
  let error: CofferError | undefined;
  let truncated = false;
  for (;;) {
    const last = starts.length - 1;
    if (last >= 0 && current === starts[last]! + lengths[last]!) {
      lengths[last]! += 1;
    } else {
      if (runStarts.has(current)) throw fsCorrupt('fat', `${what}: the cluster chain loops back to cluster ${current}`);
      runStarts.add(current);
      starts.push(current);
      lengths.push(1);
    }
    clusters += 1;
    const entry = fat.peek(current) ?? (await fat.entry(current));
    if (entry.kind === 'end') break;
    if (entry.kind !== 'next') {
      const value = entry.kind === 'invalid' ? `0x${entry.value.toString(16)}` : entry.kind;
      error = fsCorrupt('fat', `${what}: the cluster chain breaks at cluster ${current} (FAT entry ${value})`);
      break;
    }
    if (clusters >= limit) {
      truncated = true;
      break;
    }
    current = entry.cluster;
  }
  return error === undefined ? { starts, lengths, clusters, truncated } : { starts, lengths, clusters, truncated, error };
}

/**
 * Locates the `index`-th cluster (from 0) of a chain: the run holding it and how many of the
 * run's clusters follow from there (itself included). Binary search over cumulative lengths.
 */
export class ChainIndex {
  private readonly ends: number[] = [];

  constructor(readonly chain: ClusterChain) {
    let total = 0;
    for (const length of chain.lengths) this.ends.push((total += length));
  }

  /** The cluster number at `index` and the consecutive clusters from it, or undefined past the chain. */
  locate(index: number): { cluster: number; consecutive: number } | undefined {
    let low = 0;
    let high = this.ends.length - 1;
    if (high < 0 || index >= this.ends[high]!) return undefined;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.ends[middle]! > index) high = middle;
      else low = middle + 1;
    }
    const runStart = low === 0 ? 0 : this.ends[low - 1]!;
    return { cluster: this.chain.starts[low]! + (index - runStart), consecutive: this.ends[low]! - index };
  }
}
