/**
 * What every one-pass image writer does with the disk it is fed in order: cut it into the
 * format's units (qcow2 clusters, VHD and VHDX blocks, VMDK grains). Whole units inside a
 * write are handed over as views of the caller's buffer (*borrowed*: the writer stores or
 * copies them before its `write` returns); a unit split across writes is gathered in a
 * buffer of its own and handed over (not borrowed) once complete. Zero ranges are cut the
 * same way, their whole units only counted.
 */
export class UnitCutter {
  private readonly partial: Buffer;
  private fill = 0;

  constructor(readonly unitSize: number) {
    this.partial = Buffer.alloc(unitSize);
  }

  /** Cuts `data` (the bytes after the previous call's); `store` gets the complete units in order. */
  async write(data: Uint8Array, store: UnitStore): Promise<void> {
    let done = 0;
    if (this.fill > 0) {
      done = Math.min(data.length, this.unitSize - this.fill);
      this.partial.set(data.subarray(0, done), this.fill);
      this.fill += done;
      if (this.fill === this.unitSize) {
        this.fill = 0;
        await store([this.partial], false);
      }
    }
    const whole = Math.floor((data.length - done) / this.unitSize);
    if (whole > 0) {
      const units: Uint8Array[] = [];
      for (let i = 0; i < whole; i++) units.push(data.subarray(done + i * this.unitSize, done + (i + 1) * this.unitSize));
      await store(units, true);
      done += whole * this.unitSize;
    }
    if (done < data.length) {
      this.partial.set(data.subarray(done), 0);
      this.fill = data.length - done;
    }
  }

  /**
   * Cuts `length` bytes of zeros: the parts sharing a unit with data go to `store` as zeros,
   * and `skip` is told how many whole units lie in between.
   */
  async skipZeros(length: number, handlers: { store: UnitStore; skip: (units: number) => Promise<void> }): Promise<void> {
    let done = 0;
    if (this.fill > 0) {
      done = Math.min(length, this.unitSize - this.fill);
      await this.write(zeros(done), handlers.store);
    }
    const whole = Math.floor((length - done) / this.unitSize);
    if (whole > 0) await handlers.skip(whole);
    done += whole * this.unitSize;
    if (done < length) await this.write(zeros(length - done), handlers.store);
  }

  /** At the end of the disk: the last partial unit, padded with zeros, if there is one. */
  async finish(store: UnitStore): Promise<void> {
    if (this.fill === 0) return;
    this.partial.fill(0, this.fill);
    this.fill = 0;
    await store([this.partial], false);
  }
}

/**
 * Receives complete units in disk order. `borrowed`: views of the caller's buffer, valid until
 * the writer's `write` returns; otherwise the cutter's own buffer, refilled after `store`
 * resolves: either way, bytes kept past that must be copied or written first.
 */
export type UnitStore = (units: readonly Uint8Array[], borrowed: boolean) => Promise<void>;

let zeroBytes = new Uint8Array(0);
/** Zeros, from one shared buffer never written to. */
function zeros(length: number): Uint8Array {
  if (zeroBytes.length < length) zeroBytes = new Uint8Array(length);
  return zeroBytes.subarray(0, length);
}

/** Whether `bytes` holds only zeros (one memcmp against the shared zero buffer). */
export function isAllZero(bytes: Uint8Array): boolean {
  return Buffer.compare(bytes, zeros(bytes.length)) === 0;
}
