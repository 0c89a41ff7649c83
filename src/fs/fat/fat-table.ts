import type { BlockDevice } from '../../blockdev/index.js';
import type { FatGeometry } from './boot-sector.js';

/**
 * The file allocation table: entry `c` says what follows cluster `c` in its chain.
 *
 * Entry layout (fatgen103 §4): FAT16 entries are 2 bytes at 2c, FAT32 entries 4 bytes at 4c
 * of which the low 28 bits count (the top 4 are reserved). FAT12 entries are 12 bits packed
 * in pairs: entry c is the 16-bit little-endian word at byte c + c/2 (rounded down), whose
 * low 12 bits belong to an even c and high 12 bits to an odd c (so an entry may straddle a
 * sector or a cache page).
 *
 * Values: 0 free, 1 reserved, 2..clusterCount+1 the next cluster, 0xFF7/0xFFF7/0x0FFFFFF7
 * bad cluster, ≥ 0xFF8/0xFFF8/0x0FFFFFF8 end of chain; anything else is out of range.
 */
export type FatEntry =
  | { kind: 'next'; cluster: number }
  | { kind: 'end' }
  | { kind: 'free' }
  | { kind: 'bad' }
  | { kind: 'invalid'; value: number };

/** Bytes of FAT read at once and cached (aligned within the FAT). */
const PAGE_BYTES = 64 * 1024;
/** Pages kept (LRU): 2 MiB, the FAT of an 8 GiB FAT32 volume with 4 KiB clusters. */
const MAX_PAGES = 32;

/** Reads FAT entries through a bounded page cache. Concurrent calls share page reads. */
export class FatTable {
  private readonly pages = new Map<number, Promise<Uint8Array>>();
  /** The pages of `pages` already read, for {@link peek}. */
  private readonly loaded = new Map<number, Uint8Array>();
  private readonly end: number;
  private readonly bad: number;

  constructor(
    private readonly device: BlockDevice,
    private readonly geometry: FatGeometry,
  ) {
    const bits = geometry.kind === 'fat12' ? 12 : geometry.kind === 'fat16' ? 16 : 28;
    this.end = 2 ** bits - 8;
    this.bad = 2 ** bits - 9;
  }

  /** Entry of cluster `cluster`, which must be a valid cluster number (2..clusterCount+1). */
  async entry(cluster: number): Promise<FatEntry> {
    return this.peek(cluster) ?? this.classify(await this.rawValue(cluster));
  }

  /**
   * The entry when the pages holding it are already read, else undefined: following a long
   * chain then costs no promise per cluster.
   */
  peek(cluster: number): FatEntry | undefined {
    this.checkCluster(cluster);
    const bytes = this.geometry.kind === 'fat12' ? 2 : this.geometry.kind === 'fat16' ? 2 : 4;
    const at = this.geometry.kind === 'fat12' ? cluster + (cluster >> 1) : bytes * cluster;
    const first = this.loaded.get(at - (at % PAGE_BYTES));
    const last = this.loaded.get(at + bytes - 1 - ((at + bytes - 1) % PAGE_BYTES));
    if (first === undefined || last === undefined) return undefined;
    const byte = (i: number): number => {
      const page = i - (i % PAGE_BYTES) === at - (at % PAGE_BYTES) ? first : last;
      return page[i % PAGE_BYTES] ?? 0;
    };
    let value: number;
    if (this.geometry.kind === 'fat12') {
      const word = byte(at) | (byte(at + 1) << 8);
      value = cluster & 1 ? word >> 4 : word & 0x0fff;
    } else if (this.geometry.kind === 'fat16') {
      value = byte(at) | (byte(at + 1) << 8);
    } else {
      value = (byte(at) | (byte(at + 1) << 8) | (byte(at + 2) << 16) | (byte(at + 3) << 24)) & 0x0fffffff;
    }
    return this.classify(value);
  }

  private classify(value: number): FatEntry {
    if (value >= this.end) return { kind: 'end' };
    if (value === this.bad) return { kind: 'bad' };
    if (value === 0) return { kind: 'free' };
    if (value >= 2 && value <= this.geometry.clusterCount + 1) return { kind: 'next', cluster: value };
    return { kind: 'invalid', value };
  }

  private checkCluster(cluster: number): void {
    if (!Number.isInteger(cluster) || cluster < 2 || cluster > this.geometry.clusterCount + 1) {
      throw new RangeError(`cluster ${cluster} is outside 2..${this.geometry.clusterCount + 1}`);
    }
  }

  private async rawValue(cluster: number): Promise<number> {
    this.checkCluster(cluster);
    switch (this.geometry.kind) {
      case 'fat12': {
        const at = cluster + (cluster >> 1);
        const word = (await this.byte(at)) | ((await this.byte(at + 1)) << 8);
        return cluster & 1 ? word >> 4 : word & 0x0fff;
      }
      case 'fat16':
        return (await this.byte(2 * cluster)) | ((await this.byte(2 * cluster + 1)) << 8);
      case 'fat32': {
        const page = await this.page(4 * cluster); // 4-byte entries never straddle a page
        const within = (4 * cluster) % PAGE_BYTES;
        return new DataView(page.buffer, page.byteOffset + within, 4).getUint32(0, true) & 0x0fffffff;
      }
    }
  }

  private async byte(at: number): Promise<number> {
    const page = await this.page(at);
    return page[at % PAGE_BYTES] ?? 0;
  }

  /** The page holding FAT byte `at` (checked by the caller to lie within the FAT). */
  private page(at: number): Promise<Uint8Array> {
    const start = at - (at % PAGE_BYTES);
    const cached = this.pages.get(start);
    if (cached !== undefined) {
      this.pages.delete(start); // refresh its place in the LRU order
      this.pages.set(start, cached);
      return cached;
    }
    const length = Math.min(PAGE_BYTES, this.geometry.fatBytes - start);
    const pending = this.device.read(this.geometry.fatOffset + start, length);
    pending.then(
      (page) => {
        if (this.pages.get(start) === pending) this.loaded.set(start, page);
      },
      () => this.pages.delete(start), // a failed read is not cached
    );
    this.pages.set(start, pending);
    if (this.pages.size > MAX_PAGES) {
      const oldest = this.pages.keys().next().value as number;
      this.pages.delete(oldest);
      this.loaded.delete(oldest);
    }
    return pending;
  }
}
