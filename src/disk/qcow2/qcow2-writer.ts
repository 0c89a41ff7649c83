/**
 * Writes a qcow2 version 3 image, sparse, in one pass: the restore feeds the disk in order,
 * all-zero clusters are left unallocated, data clusters are appended as they come, each L2
 * table is appended as soon as its range is complete, and the L1 table, refcounts and
 * header are written at the end. Whole clusters go to the file straight from the caller's
 * buffer, gathered into large writes (file-appender.ts). Memory: one cluster, one L2 table,
 * and the clusters copied while waiting for a write (at most 8 MiB).
 *
 * Layout of the file written (64 KiB clusters, 16-bit refcounts, no extensions):
 * ```
 * cluster 0              header (104 bytes + end-of-extensions marker), rest zero
 * clusters 1..L          the L1 table (L = ceil(l1_size × 8 / cluster size))
 * clusters L+1 …         data clusters and L2 tables, interleaved in disk order
 * then                   refcount blocks (one per 32768 clusters), then the refcount table
 * ```
 * Every cluster of the file has refcount 1, and L1/L2 entries carry the COPIED flag (bit
 * 63), which is what `qemu-img check` expects of an image without snapshots. QEMU counts
 * virtual sizes in 512-byte sectors (and drops a partial one), so a disk whose size is not
 * a multiple of 512 gets a virtual size rounded up, the added bytes zero.
 */
import { FileAppender } from '../file-appender.js';
import { OutputFile } from '../output-file.js';
import { SequentialCalls } from '../sequential-calls.js';
import { isAllZero, UnitCutter, type UnitStore } from '../unit-cutter.js';
import type { DiskTarget } from '../raw-target.js';
import { QCOW2_MAGIC } from './qcow2-header.js';

const CLUSTER_BITS = 16;
const CLUSTER_SIZE = 1 << CLUSTER_BITS;
const L2_ENTRIES = CLUSTER_SIZE / 8;
const REFCOUNT_ORDER = 4; // 16-bit refcounts
const REFCOUNTS_PER_BLOCK = CLUSTER_SIZE / 2;
const HEADER_LENGTH = 104;
const COPIED = 1n << 63n;

/** Creates a qcow2 image of `size` bytes at `path` to restore into (refuses to replace a file unless `overwrite`). */
export async function openQcow2Target(path: string, size: number, options: { overwrite: boolean }): Promise<DiskTarget> {
  return new Qcow2Writer(await OutputFile.create(path, options), size);
}

class Qcow2Writer implements DiskTarget {
  readonly zeroed = false;
  readonly sequential = true;
  private readonly l1: BigUint64Array;
  private readonly out: FileAppender;
  private l2 = new BigUint64Array(L2_ENTRIES);
  private l2Index = 0;
  private l2Used = false;
  private readonly clusters = new UnitCutter(CLUSTER_SIZE);
  private guestCluster = 0;
  private readonly calls: SequentialCalls;

  constructor(
    private readonly file: OutputFile,
    private readonly size: number,
  ) {
    const l1Size = Math.ceil(Math.ceil(size / CLUSTER_SIZE) / L2_ENTRIES);
    this.l1 = new BigUint64Array(Math.max(1, l1Size));
    const l1Clusters = Math.ceil((this.l1.length * 8) / CLUSTER_SIZE);
    this.out = new FileAppender(file, (1 + l1Clusters) * CLUSTER_SIZE);
    this.calls = new SequentialCalls('qcow2 target', size, () => this.out.release());
  }

  /**
   * Whole clusters of `data` are stored straight from it (see unit-cutter.ts), gathered into
   * large writes; the next call may come before this one's bytes are written (in-order.ts).
   */
  write(offset: number, data: Uint8Array): Promise<void> {
    return this.calls.write(offset, data.length, () => this.clusters.write(data, this.store));
  }

  /** Whole zero clusters just advance the map; a partial cluster's share is stored as zeros. */
  skipZeros(offset: number, length: number): Promise<void> {
    return this.calls.skipZeros(offset, length, () =>
      this.clusters.skipZeros(length, {
        store: this.store,
        skip: async (clusters) => {
          for (let i = 0; i < clusters; i++) {
            await this.enterL2(Math.floor(this.guestCluster / L2_ENTRIES));
            this.guestCluster += 1;
          }
        },
      }),
    );
  }

  get path(): string {
    return this.file.path;
  }

  async finish(): Promise<void> {
    await this.file.finish(async () => {
      await this.calls.ended();
      await this.clusters.finish(this.store);
      await this.flushL2();
      await this.out.flush();
      await this.writeMetadata();
    });
  }

  abort(): Promise<void> {
    return this.file.abort();
  }

  /** Stores guest clusters in order, leaving zero ones unallocated (`borrowed`: see UnitCutter). */
  private readonly store: UnitStore = async (clusters, borrowed) => {
    for (const cluster of clusters) {
      await this.enterL2(Math.floor(this.guestCluster / L2_ENTRIES));
      if (!isAllZero(cluster)) {
        const host = borrowed ? await this.out.borrow(cluster) : await this.out.copy(cluster);
        this.l2[this.guestCluster % L2_ENTRIES] = BigInt(host) | COPIED;
        this.l2Used = true;
      }
      this.guestCluster += 1;
    }
  };

  /** Moves to L2 table `index`, appending the previous one if it maps anything. */
  private async enterL2(index: number): Promise<void> {
    if (index === this.l2Index) return;
    await this.flushL2();
    this.l2Index = index;
  }

  private async flushL2(): Promise<void> {
    if (!this.l2Used) return;
    const host = await this.out.take(bigEndian(this.l2));
    this.l1[this.l2Index] = BigInt(host) | COPIED;
    this.l2 = new BigUint64Array(L2_ENTRIES);
    this.l2Used = false;
  }

  /** L1 table, refcount blocks and table, then the header, which makes the image valid last. */
  private async writeMetadata(): Promise<void> {
    await this.writeAt(bigEndian(this.l1), CLUSTER_SIZE);
    // Refcount structures cover themselves: grow until the count is stable.
    const dataClusters = this.out.end / CLUSTER_SIZE;
    let blocks = 0;
    let tableClusters = 0;
    for (;;) {
      const total = dataClusters + blocks + tableClusters;
      const needBlocks = Math.ceil(total / REFCOUNTS_PER_BLOCK);
      const needTable = Math.ceil((needBlocks * 8) / CLUSTER_SIZE);
      if (needBlocks === blocks && needTable === tableClusters) break;
      blocks = needBlocks;
      tableClusters = needTable;
    }
    const total = dataClusters + blocks + tableClusters;
    const firstBlock = dataClusters;
    const table = new BigUint64Array((tableClusters * CLUSTER_SIZE) / 8);
    for (let b = 0; b < blocks; b++) {
      const refcounts = Buffer.alloc(CLUSTER_SIZE);
      const from = b * REFCOUNTS_PER_BLOCK;
      const to = Math.min(total, from + REFCOUNTS_PER_BLOCK);
      for (let cluster = from; cluster < to; cluster++) refcounts.writeUInt16BE(1, (cluster - from) * 2);
      await this.writeAt(refcounts, (firstBlock + b) * CLUSTER_SIZE);
      table[b] = BigInt((firstBlock + b) * CLUSTER_SIZE);
    }
    const tableOffset = (firstBlock + blocks) * CLUSTER_SIZE;
    await this.writeAt(bigEndian(table), tableOffset);

    const header = Buffer.alloc(CLUSTER_SIZE);
    header.writeUInt32BE(QCOW2_MAGIC, 0);
    header.writeUInt32BE(3, 4); // version
    header.writeUInt32BE(CLUSTER_BITS, 20);
    header.writeBigUInt64BE(BigInt(Math.ceil(this.size / 512) * 512), 24);
    header.writeUInt32BE(this.l1.length, 36);
    header.writeBigUInt64BE(BigInt(CLUSTER_SIZE), 40); // L1 at cluster 1
    header.writeBigUInt64BE(BigInt(tableOffset), 48);
    header.writeUInt32BE(tableClusters, 56);
    header.writeUInt32BE(REFCOUNT_ORDER, 96);
    header.writeUInt32BE(HEADER_LENGTH, 100);
    // Header extensions start at HEADER_LENGTH: only the end marker (type 0, length 0).
    await this.writeAt(header, 0);
  }

  private writeAt(data: Uint8Array, offset: number): Promise<void> {
    return this.file.writeAt(data, offset);
  }
}

function bigEndian(values: BigUint64Array): Buffer {
  const out = Buffer.alloc(values.length * 8);
  values.forEach((value, i) => out.writeBigUInt64BE(value, i * 8));
  return out;
}
