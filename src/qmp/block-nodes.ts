/**
 * Adding and removing block nodes: `blockdev-add` and `blockdev-del`.
 *
 * QAPI facts relied on (qapi/block-core.json, checked against QEMU 7.2):
 * - `blockdev-add` takes a `BlockdevOptions` object directly as its arguments: `driver`,
 *   `node-name` (needed to refer to the node later), `read-only`, `discard`, `cache`, … and
 *   the driver's own members. For `qcow2`: `file` (a node name or inline options such as
 *   `{"driver": "file", "filename": PATH}`) and `backing` (a node name, or `null` for none).
 * - `blockdev-del {node-name}` removes a node that nothing uses any more (no device, job,
 *   export or parent); it fails with GenericError while the node is in use.
 */
import type { QmpClient, QmpCallOptions } from './qmp-client.js';

/** `BlockdevOptions` as QAPI spells it; `driver` and `node-name` are required here. */
export interface BlockdevOptions {
  driver: string;
  'node-name': string;
  [member: string]: unknown;
}

/** `blockdev-add`. */
export async function blockdevAdd(qmp: QmpClient, options: BlockdevOptions, call?: QmpCallOptions): Promise<void> {
  await qmp.execute('blockdev-add', { ...options }, call);
}

/** `blockdev-del`. */
export async function blockdevDel(qmp: QmpClient, nodeName: string, call?: QmpCallOptions): Promise<void> {
  await qmp.execute('blockdev-del', { 'node-name': nodeName }, call);
}

/**
 * The options of a fleecing overlay: a qcow2 image at `filename` (already created, the size of
 * the disk, without a backing file of its own) whose backing node is the live disk
 * `backingNode`. Reads of clusters the overlay does not hold fall through to the live disk;
 * `blockdev-backup sync=none` from the live disk into it copies each cluster there just
 * before the guest overwrites it, so the overlay shows the disk as it was.
 */
export function fleecingOverlayOptions(nodeName: string, options: { filename: string; backingNode: string }): BlockdevOptions {
  return {
    driver: 'qcow2',
    'node-name': nodeName,
    file: { driver: 'file', filename: options.filename },
    backing: options.backingNode,
  };
}
