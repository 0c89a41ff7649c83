/**
 * An NBD export as a read-only {@link BlockDevice}: what backup reads from a running VM
 * (QEMU's fleecing export) and what tests read from qemu-nbd.
 *
 * - `read` splits at the server's maximum payload (and Coffer's own cap), aligns each piece to
 *   the server's minimum block size, and runs the pieces concurrently (bounded by the
 *   connection's requests in flight).
 * - `extents` come from `base:allocation` (ZERO set → `zero`; HOLE alone → `data`, since only
 *   ZERO promises zeros). With a dirty bitmap (`qemu:dirty-bitmap:NAME`), each extent also says
 *   `changed`: dirty → true, clean → false. A server without `base:allocation` gives one
 *   `data` extent (still correct).
 * - errors: the server's per-request errors become `E_SOURCE_UNREADABLE` (the contract of
 *   `read`); a connection that breaks gives `E_PROTOCOL`, `E_TIMEOUT` or `E_CONNECTION_FAILED`.
 */
import { assertReadInBounds, coalesceExtents, type BlockDevice, type Extent } from '../../blockdev/index.js';
import { CofferError, isCofferError } from '../../errors/index.js';
import { NBD_DEFAULTS } from '../defaults.js';
import { AllocationFlag, BASE_ALLOCATION, DirtyBitmapFlag, QEMU_DIRTY_BITMAP_PREFIX } from '../protocol/constants.js';
import type { BlockDescriptor } from '../protocol/transmission.js';
import type { NbdAddress } from './address.js';
import { NbdClient, type NbdClientOptions } from './nbd-client.js';

/** The longest block status query: a power of two, so aligned to any minimum block size. */
const MAX_STATUS_QUERY = 2 ** 30;

/** Options of {@link NbdBlockDevice.open}. */
export interface NbdBlockDeviceOptions extends Omit<NbdClientOptions, 'metaContexts' | 'structuredReplies'> {
  /**
   * A QEMU dirty bitmap exported with the image (`qemu-nbd -B NAME`, `block-export-add
   * bitmaps: [NAME]`): extents then carry `changed`. Its absence on the server is an error.
   */
  dirtyBitmap?: string;
  /** Default true; false reads with simple replies (old servers, tests). */
  structuredReplies?: boolean;
}

export class NbdBlockDevice implements BlockDevice {
  readonly size: number;
  private readonly pieceSize: number;
  private readonly minimum: number;

  private constructor(
    /** The connection, for what the block device interface does not cover (flags, block sizes). */
    readonly client: NbdClient,
    private readonly dirtyContext: string | undefined,
  ) {
    this.size = client.size;
    this.minimum = client.info.blockSizes.minimum;
    const max = Math.min(client.info.blockSizes.maximumPayload, NBD_DEFAULTS.maxReadRequest);
    this.pieceSize = Math.max(this.minimum, max - (max % this.minimum));
  }

  /**
   * Connects to an export. Throws like {@link NbdClient.connect}, and `E_NBD_ERROR` when a
   * dirty bitmap was asked for and the server does not offer it.
   */
  static async open(target: NbdAddress | string, options: NbdBlockDeviceOptions = {}): Promise<NbdBlockDevice> {
    const dirtyContext = options.dirtyBitmap === undefined ? undefined : `${QEMU_DIRTY_BITMAP_PREFIX}${options.dirtyBitmap}`;
    const metaContexts = dirtyContext === undefined ? [BASE_ALLOCATION] : [BASE_ALLOCATION, dirtyContext];
    const client = await NbdClient.connect(target, { ...options, metaContexts });
    if (dirtyContext !== undefined && !client.info.metaContexts.has(dirtyContext)) {
      await client.close();
      throw new CofferError('E_NBD_ERROR', `the NBD export ${JSON.stringify(client.info.name)} offers no meta context ${dirtyContext} (is the bitmap exported?)`);
    }
    return new NbdBlockDevice(client, dirtyContext);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    const pieces: Promise<unknown>[] = [];
    for (let done = 0; done < length; ) {
      const n = Math.min(this.pieceSize - ((offset + done) % this.minimum), length - done);
      pieces.push(this.readPiece(offset + done, target.subarray(done, done + n)));
      done += n;
    }
    try {
      await Promise.all(pieces);
    } catch (error) {
      await Promise.allSettled(pieces); // let no piece write into the buffer after we return
      throw error;
    }
    return target;
  }

  /** Reads `target.length` bytes at `offset`, widened to the server's minimum block size when unaligned. */
  private async readPiece(offset: number, target: Uint8Array): Promise<void> {
    const start = offset - (offset % this.minimum);
    const end = Math.min(this.size, Math.ceil((offset + target.length) / this.minimum) * this.minimum);
    try {
      if (start === offset && end === offset + target.length) await this.client.read(offset, target.length, target);
      else target.set((await this.client.read(start, end - start)).subarray(offset - start, offset - start + target.length));
    } catch (error) {
      if (isCofferError(error, 'E_NBD_ERROR')) {
        throw new CofferError('E_SOURCE_UNREADABLE', `cannot read the NBD export ${JSON.stringify(this.client.info.name)} at byte ${offset}: ${error.message}`, {
          subject: { object: this.client.info.name, offset },
          cause: error,
        });
      }
      throw error;
    }
  }

  extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    return coalesceExtents(this.statusExtents(offset, length));
  }

  private async *statusExtents(offset: number, length: number): AsyncIterable<Extent> {
    const contexts = this.client.info.metaContexts;
    if (!contexts.has(BASE_ALLOCATION) && this.dirtyContext === undefined) {
      if (length > 0) yield { offset, length, kind: 'data' };
      return;
    }
    const end = offset + length;
    let position = offset;
    while (position < end) {
      const query = Math.min(end - position, MAX_STATUS_QUERY - (position % MAX_STATUS_QUERY));
      const status = await this.client.blockStatus(position, query);
      const allocation = status.get(BASE_ALLOCATION);
      const dirty = this.dirtyContext === undefined ? undefined : status.get(this.dirtyContext);
      // Walk the contexts' descriptor lists together; each yielded piece has one state in each.
      const a = allocation === undefined ? undefined : new DescriptorWalk(allocation);
      const d = dirty === undefined ? undefined : new DescriptorWalk(dirty);
      const stop = Math.min(end, position + Math.min(a?.total ?? Infinity, d?.total ?? Infinity));
      while (position < stop) {
        const step = Math.min(stop - position, a?.left ?? Infinity, d?.left ?? Infinity);
        const extent: Extent = { offset: position, length: step, kind: a !== undefined && (a.flags & AllocationFlag.ZERO) !== 0 ? 'zero' : 'data' };
        if (d !== undefined) extent.changed = (d.flags & DirtyBitmapFlag.DIRTY) !== 0;
        yield extent;
        position += step;
        a?.advance(step);
        d?.advance(step);
      }
    }
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** A cursor over one context's descriptors: the current flags and the bytes left in it. */
class DescriptorWalk {
  readonly total: number;
  private index = 0;
  left: number;

  constructor(private readonly descriptors: BlockDescriptor[]) {
    this.total = descriptors.reduce((sum, d) => sum + d.length, 0);
    this.left = (descriptors[0] as BlockDescriptor).length;
  }

  get flags(): number {
    return (this.descriptors[this.index] as BlockDescriptor).flags;
  }

  advance(n: number): void {
    this.left -= n;
    if (this.left === 0 && this.index + 1 < this.descriptors.length) this.left = (this.descriptors[++this.index] as BlockDescriptor).length;
  }
}
