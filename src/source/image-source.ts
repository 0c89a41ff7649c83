import { stat } from 'node:fs/promises';
import { openDiskImage, type DiskFormat, type DiskImage } from '../disk/index.js';
import type { ImageLayer, SourceDisk, VmSource } from './vm-source.js';

/**
 * A VM given as disk image files or block devices, each in any format Coffer reads (detected
 * by content; a chain is given by its top image). Disks are named `disk0`, `disk1` … in the
 * order given, so the same command line matches the same disks across snapshots. With
 * `imageSnapshot`, each image is read at that internal snapshot (qcow2); with `format`, each is
 * read as that format instead of the one its content shows (`raw`: a raw disk whose guest
 * wrote an image header at its start is still a raw disk). No definition.
 */
export async function openImageSource(vm: string, paths: readonly string[], options: { imageSnapshot?: string; format?: DiskFormat } = {}): Promise<VmSource> {
  const disks: SourceDisk[] = [];
  try {
    for (const [i, path] of paths.entries()) {
      const image = await openDiskImage(path, {
        ...(options.imageSnapshot === undefined ? {} : { snapshot: options.imageSnapshot }),
        ...(options.format === undefined ? {} : { format: options.format }),
      });
      const layers = await layersOf(image);
      // Every file read besides the image itself: its backing chain, a VMDK descriptor's extents.
      const otherFiles: string[] = [];
      for (let layer: DiskImage | null = image; layer !== null; layer = layer.backing) {
        for (const file of layer.files ?? [layer.path]) if (file !== image.path && !otherFiles.includes(file)) otherFiles.push(file);
      }
      disks.push({ name: `disk${i}`, format: image.format, location: path, device: image, ...(layers ? { layers } : {}), ...(otherFiles.length > 0 ? { otherFiles } : {}) });
    }
  } catch (error) {
    await Promise.all(disks.map((disk) => disk.device.close()));
    throw error;
  }
  let closed = false;
  return {
    vm,
    definition: null,
    disks,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(disks.map((disk) => disk.device.close()));
    },
  };
}

/**
 * The chain's layers, top first, with identities that change whenever what the layer reads
 * can have: for each of its files (a VMDK's descriptor and extent files, not the descriptor
 * alone) device, inode, size, modification and change times (the change time cannot be set
 * back by tools that preserve mtimes), and the internal snapshot read, if any (the same file
 * read at another snapshot, or at its current state, is other content). A block device's
 * content changes without any of these, so a chain with a device in it (even behind a
 * symbolic link) has no layers (and gets no shortcut).
 */
async function layersOf(image: DiskImage): Promise<ImageLayer[] | undefined> {
  const layers: ImageLayer[] = [];
  for (let layer: DiskImage | null = image; layer !== null; layer = layer.backing) {
    const identities: string[] = [];
    for (const file of layer.files ?? [layer.path]) {
      const info = await stat(file, { bigint: true });
      if (!info.isFile()) return undefined;
      identities.push(`${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`);
    }
    const snapshot = layer.snapshotRead === undefined ? '' : `@snapshot:${JSON.stringify([layer.snapshotRead.id, layer.snapshotRead.name, layer.snapshotRead.date])}`;
    layers.push({ path: layer.path, identity: identities.join('+') + snapshot });
  }
  return layers;
}
