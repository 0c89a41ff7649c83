import { SliceDevice, type BlockDevice } from '../blockdev/index.js';
import { CofferError } from '../errors/index.js';
import { readDiskLayout } from './disk-layout.js';
import { finish, type DraftVolume } from './draft-volume.js';
import { detectEncryption } from './encryption.js';
import { assembleLogicalVolumes, type FoundPv } from './lvm/logical-volumes.js';
import { LABEL_SECTORS, findPvLabel } from './lvm/pv-label.js';
import { readClipped } from './read-bytes.js';
import type { TableEntry } from './table-entry.js';
import type { Volume } from './volume.js';

/**
 * Lists the volumes on the disks of one VM (`disks[i]` is disk `i`): for each disk, its
 * partitions (MBR with logical partitions, GPT with fallback to its backup) or, without a
 * partition table, the whole disk as `disk`; then the LVM2 logical volumes `vg/lv` assembled
 * across all of them. Volumes holding a LUKS or BitLocker container are marked `encrypted`,
 * LVM physical volumes `lvmPhysicalVolume`.
 *
 * Damaged or hostile tables do not make it throw: what can be read is listed, with
 * `warnings` saying what was not. Partitions reaching past the disk's end are clipped to it
 * (a warning says so); one starting past the end is listed with size 0. Only I/O errors of
 * the disks themselves are thrown. Reads: sector 0, the GPT header and entry array (or the
 * EBR chain), the first 2 KiB of each volume, and each PV's metadata area header and text.
 * The devices returned are views of `disks`: closing them leaves the disks open.
 *
 * @example
 * const volumes = await listVolumes([await RawImage.open('vm.raw')]);
 * // [{ name: 'p1', kind: 'partition', disk: 0, offset: 1048576, size: …, typeDescription: 'EFI System', … },
 * //  { name: 'vg0/root', kind: 'logical-volume', disk: 0, size: …, … }]
 */
export async function listVolumes(disks: BlockDevice[]): Promise<Volume[]> {
  const volumes: DraftVolume[] = [];
  const pvs: FoundPv[] = [];
  for (const [index, disk] of disks.entries()) {
    const layout = await readDiskLayout(disk);
    const onDisk = layout.kind === 'table' && layout.table.entries.length > 0
      ? layout.table.entries.map((entry) => partitionVolume(disk, index, entry, layout.table.warnings))
      : [wholeDisk(disk, index, layout.kind === 'table' ? layout.table.warnings : layout.warnings)];
    for (const volume of onDisk) {
      volumes.push(volume);
      if (volume.typeDescription === 'extended' || volume.size === 0) continue;
      const start = await readClipped(volume.device, 0, LABEL_SECTORS * 512);
      const encrypted = detectEncryption(start);
      if (encrypted !== undefined) {
        volume.encrypted = encrypted;
        continue;
      }
      try {
        const label = findPvLabel(start);
        if (label !== undefined) pvs.push({ volume, label });
      } catch (error) {
        if (!(error instanceof CofferError)) throw error;
        volume.warnings.push(error.message);
      }
    }
  }
  const logical = await assembleLogicalVolumes(pvs);
  for (const volume of logical) {
    if (volume.size === 0 || volume.warnings.length > 0) continue; // unreadable or partly missing: not probed
    const encrypted = detectEncryption(await readClipped(volume.device, 0, 512));
    if (encrypted !== undefined) volume.encrypted = encrypted;
  }
  return [...volumes, ...logical].map(finish);
}

function wholeDisk(disk: BlockDevice, index: number, warnings: string[]): DraftVolume {
  return { name: 'disk', kind: 'whole-disk', disk: index, offset: 0, size: disk.size, warnings: [...warnings], device: disk };
}

function partitionVolume(disk: BlockDevice, index: number, entry: TableEntry, tableWarnings: string[]): DraftVolume {
  const warnings = [...tableWarnings, ...entry.warnings];
  let size = entry.size;
  let device: BlockDevice;
  if (!(entry.start < disk.size)) {
    warnings.push(`starts at byte ${entry.start}, beyond the end of the disk (${disk.size} bytes): listed empty`);
    size = 0;
    device = new SliceDevice(disk, disk.size, 0);
  } else {
    if (entry.start + size > disk.size) {
      warnings.push(`ends at byte ${entry.start + size}, beyond the end of the disk (${disk.size} bytes): clipped to the disk`);
      size = disk.size - entry.start;
    }
    device = new SliceDevice(disk, entry.start, size);
  }
  return {
    name: `p${entry.number}`,
    kind: 'partition',
    disk: index,
    offset: entry.start,
    size,
    partitionType: entry.partitionType,
    ...(entry.typeDescription === undefined ? {} : { typeDescription: entry.typeDescription }),
    ...(entry.label === undefined ? {} : { label: entry.label }),
    ...(entry.uuid === undefined ? {} : { uuid: entry.uuid }),
    warnings,
    device,
  };
}
