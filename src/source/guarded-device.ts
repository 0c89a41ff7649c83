import type { BlockDevice, Extent } from '../blockdev/index.js';

/**
 * A live capture's disk whose reads fail with the capture's break once it broke (its scratch
 * filesystem ran low, its view ended early: qemu/capture-guard.ts, scratch-space.ts): a read
 * failing because the capture was ended says why it was, and bytes read after the break are
 * not handed on.
 */
export function guardedDevice(device: BlockDevice, failure: () => Error | undefined): BlockDevice {
  const check = (): void => {
    const broken = failure();
    if (broken !== undefined) throw broken;
  };
  return {
    size: device.size,
    async read(offset, length, into) {
      check();
      try {
        const bytes = await device.read(offset, length, into);
        check();
        return bytes;
      } catch (error) {
        throw failure() ?? error;
      }
    },
    async *extents(offset?: number, length?: number): AsyncIterable<Extent> {
      check();
      try {
        for await (const extent of device.extents(offset, length)) {
          check();
          yield extent;
        }
      } catch (error) {
        throw failure() ?? error;
      }
    },
    close: () => device.close(),
  };
}
