import type { BlockDevice, Extent } from '../blockdev/index.js';
import type { ImageLayer } from '../source/index.js';

/**
 * Chain-aware incrementals. When the parent snapshot read exactly the files that now lie
 * at layer `k` and below of the current chain (same paths, same identities: untouched
 * since), every range those layers provide is unchanged since the parent — only what the
 * layers above `k` allocate needs reading. `k = 0` means the whole chain is untouched.
 * Returns `k`, or undefined when the chains do not line up that way.
 */
export function unchangedFromLayer(parent: readonly ImageLayer[] | undefined, current: readonly ImageLayer[] | undefined): number | undefined {
  if (parent === undefined || current === undefined || parent.length === 0) return undefined;
  const k = current.length - parent.length;
  if (k < 0) return undefined;
  const same = parent.every((layer, i) => current[k + i]?.path === layer.path && current[k + i]?.identity === layer.identity);
  return same ? k : undefined;
}

/**
 * The device with its extents marked `changed: false` wherever they come from layer `k` or
 * below — or from no layer at all (unallocated everywhere, so zeros now as then).
 */
export function withChangesAboveLayer(device: BlockDevice, k: number): BlockDevice {
  return {
    size: device.size,
    read: (offset, length, into) => device.read(offset, length, into),
    close: () => device.close(),
    async *extents(offset?: number, length?: number): AsyncIterable<Extent> {
      for await (const extent of device.extents(offset, length)) {
        yield { ...extent, changed: extent.layer !== undefined && extent.layer < k };
      }
    },
  };
}
