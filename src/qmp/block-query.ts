/**
 * What QEMU says about its disks: `query-block` (one entry per guest-visible drive) and
 * `query-named-block-nodes` (every node of the block graph), checked and typed.
 *
 * QAPI facts relied on (qapi/block-core.json, checked against QEMU 7.2's query-qmp-schema):
 * - `query-block` returns `[BlockInfo]`: `device` (the legacy `-drive` id; `""` for disks
 *   defined with `-blockdev` + `-device`), `qdev` (optional: the device's id, or its QOM path
 *   when it has none), `type`, `removable`, `locked`, `inserted` (optional: the medium, a
 *   `BlockDeviceInfo`; absent for an empty CD-ROM).
 * - `BlockDeviceInfo`: `node-name` (optional), `file` (the image's file name), `ro`, `drv` (the
 *   node's driver: qcow2, raw, file…), `backing_file_depth`, `image` (`ImageInfo`: `filename`,
 *   `format`, `virtual-size`, optional `actual-size`, `cluster-size`, `backing-filename`), and
 *   optional `dirty-bitmaps` (`[BlockDirtyInfo]`, the bitmaps of that very node).
 * - `BlockDirtyInfo`: `name` (optional: anonymous bitmaps have none), `count` (dirty bytes),
 *   `granularity` (bytes per bit), `recording` (enabled: tracks new writes), `busy` (in use
 *   by a job or an export, cannot be changed), `persistent` (stored in the qcow2 file at
 *   shutdown), `inconsistent` (optional: a persistent bitmap found in-use at startup, i.e.
 *   QEMU did not stop cleanly; it cannot be trusted and can only be removed).
 * - `query-named-block-nodes` takes `flat` (bool): with `flat: true` each `image` omits the
 *   recursive `backing-image` chain. It returns `[BlockDeviceInfo]`.
 */
import type { QmpClient, QmpCallOptions } from './qmp-client.js';
import { arrayOf, asBoolean, asInteger, asObject, asString, optBoolean, optInteger, optString } from './json-shape.js';

/** A dirty bitmap of one block node. */
export interface DirtyBitmapInfo {
  /** Absent for anonymous (internal) bitmaps. */
  name: string | undefined;
  /** Dirty bytes (a multiple of `granularity`, except possibly at the end of the disk). */
  count: number;
  /** Bytes each bit covers. */
  granularity: number;
  recording: boolean;
  busy: boolean;
  persistent: boolean;
  /** True when QEMU found the persistent bitmap in use at startup: it must not be trusted. */
  inconsistent: boolean;
}

/** One node of the block graph. */
export interface BlockNodeInfo {
  /** Absent for nodes that QEMU named automatically in old versions (today every node has one). */
  nodeName: string | undefined;
  /** The node's driver (`qcow2`, `raw`, `file`, `copy-before-write`…). */
  driver: string;
  /** The file name QEMU reports for the node (for protocol nodes, the file itself). */
  filename: string;
  readOnly: boolean;
  /** The image format QEMU sees at this node (`image.format`). */
  format: string;
  /** Guest-visible size in bytes. */
  virtualSize: number;
  /** Bytes allocated on the host, when QEMU knows. */
  actualSize: number | undefined;
  clusterSize: number | undefined;
  backingFilename: string | undefined;
  backingDepth: number;
  dirtyBitmaps: DirtyBitmapInfo[];
  /**
   * The image chain as `image` and its nested `backing-image`s describe it, top first: each
   * layer's file name (`nbd+unix:///disk0?socket=…` for an NBD export) and format (`nbd` for
   * a node of the nbd driver itself). Only the top with `flat: true`.
   */
  imageChain: { filename: string; format: string }[];
}

/** One drive the guest sees. */
export interface BlockDriveInfo {
  /** The legacy `-drive` id; `""` for a disk made with `-blockdev` and `-device`. */
  device: string;
  /** The guest device's id (`-device …,id=`), or its QOM path when it has no id. */
  qdev: string | undefined;
  removable: boolean;
  /** The medium; absent for an empty removable drive. */
  inserted: BlockNodeInfo | undefined;
}

/**
 * The guest device id in a drive's `qdev`: the id itself, or the id inside a QOM path under
 * `/machine/peripheral/` (a virtio-blk device reports its backend,
 * `/machine/peripheral/ID/virtio-backend`); undefined for a device without an id
 * (`/machine/peripheral-anon/…`).
 */
export function deviceIdOfQdev(qdev: string | undefined): string | undefined {
  if (qdev === undefined || qdev === '') return undefined;
  if (!qdev.startsWith('/')) return qdev;
  return /^\/machine\/peripheral\/([^/]+)(?:\/|$)/.exec(qdev)?.[1];
}

/** `query-block`: the guest's drives. */
export async function queryBlock(qmp: QmpClient, options?: QmpCallOptions): Promise<BlockDriveInfo[]> {
  const reply = await qmp.execute('query-block', undefined, options);
  return arrayOf(reply, 'query-block', (item, where) => {
    const info = asObject(item, where);
    return {
      device: asString(info['device'], `${where}.device`),
      qdev: optString(info['qdev'], `${where}.qdev`),
      removable: asBoolean(info['removable'], `${where}.removable`),
      inserted: info['inserted'] === undefined ? undefined : parseBlockNode(info['inserted'], `${where}.inserted`),
    };
  });
}

/** `query-named-block-nodes` with `flat: true`: every node of the block graph. */
export async function queryNamedBlockNodes(qmp: QmpClient, options?: QmpCallOptions): Promise<BlockNodeInfo[]> {
  const reply = await qmp.execute('query-named-block-nodes', { flat: true }, options);
  return arrayOf(reply, 'query-named-block-nodes', parseBlockNode);
}

/** Checks one `BlockDeviceInfo`. */
export function parseBlockNode(value: unknown, where: string): BlockNodeInfo {
  const node = asObject(value, where);
  const image = asObject(node['image'], `${where}.image`);
  return {
    nodeName: optString(node['node-name'], `${where}.node-name`),
    driver: asString(node['drv'], `${where}.drv`),
    filename: asString(node['file'], `${where}.file`),
    readOnly: asBoolean(node['ro'], `${where}.ro`),
    format: asString(image['format'], `${where}.image.format`),
    virtualSize: asInteger(image['virtual-size'], `${where}.image.virtual-size`),
    actualSize: optInteger(image['actual-size'], `${where}.image.actual-size`),
    clusterSize: optInteger(image['cluster-size'], `${where}.image.cluster-size`),
    backingFilename: optString(image['backing-filename'], `${where}.image.backing-filename`),
    backingDepth: asInteger(node['backing_file_depth'], `${where}.backing_file_depth`),
    dirtyBitmaps: node['dirty-bitmaps'] === undefined ? [] : arrayOf(node['dirty-bitmaps'], `${where}.dirty-bitmaps`, parseDirtyBitmap),
    imageChain: imageChain(image, `${where}.image`),
  };
}

/** At most this many layers are read from a reply (QEMU's own limit on chains is about 1000). */
const MAX_CHAIN = 1024;

function imageChain(top: Record<string, unknown>, where: string): { filename: string; format: string }[] {
  const chain: { filename: string; format: string }[] = [];
  let image: Record<string, unknown> | undefined = top;
  for (let at = where; image !== undefined && chain.length < MAX_CHAIN; at = `${at}.backing-image`) {
    chain.push({ filename: asString(image['filename'], `${at}.filename`), format: asString(image['format'], `${at}.format`) });
    image = image['backing-image'] === undefined ? undefined : asObject(image['backing-image'], `${at}.backing-image`);
  }
  return chain;
}

function parseDirtyBitmap(value: unknown, where: string): DirtyBitmapInfo {
  const b = asObject(value, where);
  return {
    name: optString(b['name'], `${where}.name`),
    count: asInteger(b['count'], `${where}.count`),
    granularity: asInteger(b['granularity'], `${where}.granularity`),
    recording: asBoolean(b['recording'], `${where}.recording`),
    busy: asBoolean(b['busy'], `${where}.busy`),
    persistent: asBoolean(b['persistent'], `${where}.persistent`),
    inconsistent: optBoolean(b['inconsistent'], `${where}.inconsistent`) ?? false,
  };
}
