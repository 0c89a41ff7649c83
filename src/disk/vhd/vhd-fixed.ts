import { assertReadInBounds, type Extent, type Placement } from '../../blockdev/index.js';
import type { DiskImage } from '../disk-image.js';
import type { ImageFile } from '../image-file.js';
import { extentPlacements } from '../segments.js';
import type { VhdFooter } from './vhd-footer.js';

/**
 * A fixed VHD: the guest disk stored as is, followed by the footer. Reads go straight to the
 * file; the extent map comes from the file's holes (SEEK_DATA/SEEK_HOLE), as for a raw image,
 * so a sparse fixed VHD shows its holes as zeros.
 */
export class FixedVhd implements DiskImage {
  readonly format = 'vpc' as const;
  readonly backing = null;
  readonly size: number;
  private closed = false;

  /** `file` must hold at least `footer.currentSize` bytes before its footer (checked by the opener). */
  constructor(
    private readonly file: ImageFile,
    readonly footer: VhdFooter,
  ) {
    this.size = footer.currentSize;
  }

  get path(): string {
    return this.file.path;
  }

  /** What `coffer disk info` shows: the VHD's type, block size, and its footer's identity and creator. */
  get details(): Record<string, string | number | boolean> {
    return {
      subformat: this.footer.diskType,
      uniqueId: this.footer.uniqueId,
      creator: `${this.footer.creatorApp.trim()} ${this.footer.creatorOs.trim()}`.trim(),
      savedState: this.footer.savedState,
    };
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    if (length > 0) await this.file.readAt(offset, length, target);
    return target;
  }

  /** The file's data where it lies (the guest disk is stored as is), its holes as zeros. */
  placements(offset: number, length: number): AsyncIterable<Placement> {
    return extentPlacements(this.extents(offset, length), (at, bytes) => this.file.placeAt(at, bytes));
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    for await (const run of this.file.dataRuns(offset, length)) yield { offset: run.at, length: run.length, kind: run.data ? 'data' : 'zero', layer: 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }
}
