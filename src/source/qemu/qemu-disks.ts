import { CofferError } from '../../errors/index.js';
import { deviceIdOfQdev, queryBlock, type BlockNodeInfo, type QmpClient } from '../../qmp/index.js';

/** Every bitmap Coffer makes starts with this, so it never touches another tool's. */
export const CHECKPOINT_PREFIX = 'coffer-';

/**
 * Bytes per bit of the checkpoint bitmaps Coffer adds: QEMU's default for a qcow2 with 64 KiB
 * clusters, asked for explicitly so that every disk, whatever its format or cluster size, is
 * tracked (and cut into blocks, tracked-block-size.ts in backup/) in the same 64 KiB units.
 */
export const CHECKPOINT_GRANULARITY = 64 * 1024;

/** One disk of a running VM, as live backup sees it. */
export interface QemuDisk {
  /** Stable name: the guest device id (`-device …,id=NAME`), else the drive id, else the node name. */
  name: string;
  /** The format node the guest writes through: bitmaps, jobs and overlays attach here. */
  nodeName: string;
  size: number;
  format: string;
  filename: string;
  node: BlockNodeInfo;
}

/**
 * The VM's writable disks with a medium, in the order QEMU lists them (read-only drives such
 * as CD-ROMs are left out: they are not the VM's state).
 *
 * A disk's name is the first of its guest device id, its drive id and its node name, unless
 * `knownNames` (the disk names of the VM's previous backup) holds another of the three: then
 * that one, so that a disk keeps the name its backups have. (Before 2026-11-28 a virtio-blk
 * device's id was not found in its QOM path, and such disks were named by their node.)
 */
export async function listQemuDisks(qmp: QmpClient, knownNames: ReadonlySet<string> = new Set()): Promise<QemuDisk[]> {
  const disks: QemuDisk[] = [];
  for (const drive of await queryBlock(qmp)) {
    const node = drive.inserted;
    if (node === undefined || node.readOnly) continue;
    if (node.nodeName === undefined) throw new CofferError('E_SOURCE_UNREADABLE', `drive ${drive.device || drive.qdev}: QEMU reports no node name (QEMU too old for live backup)`);
    const candidates = [deviceIdOfQdev(drive.qdev), drive.device !== '' ? drive.device : undefined, node.nodeName].filter((n): n is string => n !== undefined);
    const name = candidates.find((n) => knownNames.has(n)) ?? (candidates[0] as string);
    disks.push({ name, nodeName: node.nodeName, size: node.virtualSize, format: node.format, filename: node.filename, node });
  }
  if (disks.length === 0) throw new CofferError('E_SOURCE_UNREADABLE', 'the VM has no writable disk to back up');
  const names = new Set(disks.map((d) => d.name));
  if (names.size !== disks.length) throw new CofferError('E_SOURCE_UNREADABLE', `two disks of the VM share a name (${disks.map((d) => d.name).join(', ')}): give the devices ids`);
  return disks;
}

/**
 * Whether a disk's bitmap `checkpoint` (left by the previous backup) can tell what changed
 * since: it must exist, be recording, consistent and not in use. Otherwise the reason for a
 * full read.
 */
export function checkpointProblem(disk: QemuDisk, checkpoint: string | undefined): string | undefined {
  if (checkpoint === undefined) return 'no checkpoint from a previous backup of this disk';
  const bitmap = disk.node.dirtyBitmaps.find((b) => b.name === checkpoint);
  if (bitmap === undefined) return `checkpoint bitmap ${checkpoint} is missing on node ${disk.nodeName} (VM restarted without persistent bitmaps, or the disk was replaced)`;
  if (bitmap.inconsistent) return `checkpoint bitmap ${checkpoint} is inconsistent (QEMU stopped without saving it)`;
  if (!bitmap.recording) return `checkpoint bitmap ${checkpoint} is not recording`;
  if (bitmap.busy) return `checkpoint bitmap ${checkpoint} is in use by another job`;
  return undefined;
}
