/**
 * Which disks of a running VM read their data from an NBD export: an instantly-recovered VM
 * (`coffer serve`) whose disk is an `nbd` node, directly or as the backing of an overlay
 * (`-blockdev driver=nbd,…` with a qcow2 on top, `-drive file=nbd+unix://…,snapshot=on`, a
 * qcow2 whose backing file is an NBD URI). Read from query-block's image chain: a layer is
 * NBD when its format is `nbd` (the nbd driver as the node) or its file name is an NBD URI
 * (`nbd://`, `nbd+unix://`, `nbds://`…) or a `json:` file name of an nbd node or of a
 * format node right over one.
 */
import type { BlockDriveInfo } from '../qmp/index.js';

/** A disk to move. */
export interface NbdBackedDisk {
  /** The guest device id, else the drive id, else the node name (live backup names disks so). */
  name: string;
  /** The node the device is attached to: the mirror's source. */
  topNode: string;
  size: number;
  /** Every file name of its chain, top first (to find the old nodes after the move). */
  chainFilenames: string[];
  /** The NBD layers' file names (what must be released for the export to end). */
  nbdFilenames: string[];
}

const NBD_URI = /^nbds?(\+unix|\+tcp|\+vsock)?:\/\//;

/** True when a layer reads from NBD. */
export function isNbdLayer(layer: { filename: string; format: string }): boolean {
  return layer.format === 'nbd' || NBD_URI.test(layer.filename) || isNbdJson(layer.filename);
}

/**
 * A `json:{…}` file name whose node is the nbd driver, or a format node straight over one
 * (`{"driver": "raw", "file": {"driver": "nbd", …}}`); not an overlay whose backing is NBD
 * (that layer is a local file: the backing shows as the next layer).
 */
function isNbdJson(filename: string): boolean {
  if (!filename.startsWith('json:')) return false;
  let value: unknown;
  try {
    value = JSON.parse(filename.slice(5));
  } catch {
    return false;
  }
  const driverOf = (v: unknown): unknown => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)['driver'] : undefined);
  return driverOf(value) === 'nbd' || driverOf(typeof value === 'object' && value !== null ? (value as Record<string, unknown>)['file'] : undefined) === 'nbd';
}

/** The VM's drives whose chain holds an NBD layer, in query-block order. */
export function nbdBackedDisks(drives: readonly BlockDriveInfo[]): NbdBackedDisk[] {
  const disks: NbdBackedDisk[] = [];
  for (const drive of drives) {
    const node = drive.inserted;
    if (node?.nodeName === undefined) continue;
    const nbd = node.imageChain.filter(isNbdLayer).map((l) => l.filename);
    if (nbd.length === 0) continue;
    const qdev = drive.qdev !== undefined && !drive.qdev.startsWith('/') ? drive.qdev : undefined;
    disks.push({
      name: qdev ?? (drive.device !== '' ? drive.device : node.nodeName),
      topNode: node.nodeName,
      size: node.virtualSize,
      chainFilenames: node.imageChain.map((l) => l.filename),
      nbdFilenames: nbd,
    });
  }
  return disks;
}
