import type { BlockDevice } from '../../blockdev/index.js';
import { CofferError } from '../../errors/index.js';
import type { DraftVolume } from '../draft-volume.js';
import type { VolumeSegment } from '../volume.js';
import { parseLvmConfig } from './config-text.js';
import { LogicalVolumeDevice, UnreadableDevice, type MappedSegment, type StripeArea } from './lv-device.js';
import { readMetadataText } from './metadata-area.js';
import type { PvLabel } from './pv-label.js';
import { interpretVg, type LvMetadata, type VgMetadata } from './vg-metadata.js';

/** A volume (partition or whole disk) found to hold an LVM2 PV label. */
export interface FoundPv {
  volume: DraftVolume;
  label: PvLabel;
}

/**
 * Assembles LVM2 volume groups from the PVs found on all disks of a VM: reads each PV's
 * metadata areas (the newest `seqno` of a VG wins), matches the VG's PVs to the labels by
 * UUID, and returns one volume `vg/lv` per visible logical volume, in metadata order.
 *
 * - Linear and striped segments are mapped (LogicalVolumeDevice), also across disks.
 * - A VG with a missing PV: its LVs are listed, with a warning on those that use it; reads of
 *   the missing parts throw E_SOURCE_UNREADABLE.
 * - Thin, RAID, mirror, cache, snapshot (copy-on-write) and other segment types: listed with
 *   a warning, and a device whose reads throw E_FS_UNSUPPORTED.
 * - A damaged LV entry: listed with a warning, reads throw E_FS_CORRUPT; damaged metadata of
 *   a PV: a warning on that PV's volume, the other copies are still used.
 * Also fills in each PV volume's `lvmPhysicalVolume`.
 */
export async function assembleLogicalVolumes(found: FoundPv[]): Promise<DraftVolume[]> {
  const byUuid = new Map<string, FoundPv>();
  for (const pv of found) {
    const first = byUuid.get(pv.label.uuid);
    if (first === undefined) byUuid.set(pv.label.uuid, pv);
    else pv.volume.warnings.push(`the same LVM physical volume ${pv.label.uuid} as ${describe(first.volume)}: this copy is not used`);
  }
  const groups = new Map<string, { vg: VgMetadata; from: FoundPv }>();
  for (const pv of byUuid.values()) {
    for (const area of pv.label.metadataAreas) {
      let vg: VgMetadata;
      try {
        const text = await readMetadataText(pv.volume.device, area);
        if (text === undefined) continue;
        vg = interpretVg(parseLvmConfig(text));
      } catch (error) {
        if (!(error instanceof CofferError)) throw error;
        pv.volume.warnings.push(`LVM metadata unreadable: ${error.message}`);
        continue;
      }
      const key = vg.id || vg.name;
      const known = groups.get(key);
      if (known === undefined || vg.seqno > known.vg.seqno) groups.set(key, { vg, from: pv });
    }
  }
  const volumes: DraftVolume[] = [];
  for (const { vg, from } of groups.values()) {
    for (const pv of vg.pvs.values()) {
      const match = byUuid.get(pv.uuid);
      if (match !== undefined) match.volume.lvmPhysicalVolume = { vg: vg.name, uuid: pv.uuid };
    }
    const cowStores = new Map(vg.lvs.flatMap((lv) => lv.segments.filter((s) => s.cowStore !== undefined).map((s) => [s.cowStore!, s.origin ?? '?'] as const)));
    const visible = new Set(vg.lvs.filter((lv) => lv.visible).map((lv) => lv.name));
    for (const lv of vg.lvs) {
      // LVM marks a snapshot's COW volume hidden, and shows it (as the snapshot) when its origin is visible.
      const snapshotOf = cowStores.get(lv.name);
      if (lv.visible || (snapshotOf !== undefined && visible.has(snapshotOf))) volumes.push(logicalVolume(vg, lv, snapshotOf, byUuid, from));
    }
  }
  for (const pv of byUuid.values()) pv.volume.lvmPhysicalVolume ??= { vg: '', uuid: pv.label.uuid };
  return volumes;
}

function logicalVolume(vg: VgMetadata, lv: LvMetadata, snapshotOf: string | undefined, byUuid: Map<string, FoundPv>, from: FoundPv): DraftVolume {
  const name = `${vg.name}/${lv.name}`;
  const extents = lv.segments.reduce((sum, s) => sum + s.extentCount, 0);
  const size = extents * vg.extentSize;
  const types = [...new Set(lv.segments.map((s) => s.type))];
  const shown = [...new Set(lv.segments.map((s) => (s.type === 'striped' && s.stripes.length === 1 ? 'linear' : s.type)))];
  const kind = snapshotOf === undefined ? shown.join(', ') || 'logical volume' : 'snapshot';
  const base = { name, kind: 'logical-volume' as const, label: lv.name, uuid: lv.id, typeDescription: `LVM ${kind}` };
  const unreadable = (code: 'E_FS_CORRUPT' | 'E_FS_UNSUPPORTED', why: string): DraftVolume => ({
    ...base, disk: from.volume.disk, size: Number.isSafeInteger(size) ? size : 0, warnings: [why],
    device: new UnreadableDevice(Number.isSafeInteger(size) ? size : 0, code, `${name}: ${why}`),
  });
  if (lv.problem !== undefined) return unreadable('E_FS_CORRUPT', `damaged LV metadata: ${lv.problem}`);
  if (!Number.isSafeInteger(size)) return unreadable('E_FS_CORRUPT', `damaged LV metadata: ${extents} extents is absurd`);
  if (snapshotOf !== undefined) return unreadable('E_FS_UNSUPPORTED', `a snapshot of ${vg.name}/${snapshotOf}: copy-on-write snapshots are not read`);
  const other = types.filter((t) => t !== 'striped');
  if (other.length > 0) return unreadable('E_FS_UNSUPPORTED', `segment type ${other.join(', ')} is not read (only linear and striped volumes are)`);
  const warnings: string[] = [];
  const segments: MappedSegment[] = [];
  const layout: VolumeSegment[] = [];
  let disk: number | undefined;
  for (const segment of lv.segments) {
    const perStripe = (segment.extentCount / segment.stripes.length) * vg.extentSize;
    const stripes: StripeArea[] = [];
    const placed: VolumeSegment['stripes'][number][] = [];
    for (const stripe of segment.stripes) {
      const pv = vg.pvs.get(stripe.pv);
      if (pv === undefined) return unreadable('E_FS_CORRUPT', `damaged LV metadata: no physical volume ${stripe.pv} in the VG`);
      if (stripe.extent + segment.extentCount / segment.stripes.length > pv.peCount) {
        return unreadable('E_FS_CORRUPT', `damaged LV metadata: extents beyond the end of ${stripe.pv}`);
      }
      const holder = byUuid.get(pv.uuid);
      if (holder === undefined) {
        const warning = `physical volume ${pv.uuid} (${stripe.pv}) is on none of the disks given: parts of this volume cannot be read`;
        if (!warnings.includes(warning)) warnings.push(warning);
        stripes.push({ missing: pv.uuid });
        placed.push({ missing: pv.uuid });
        continue;
      }
      const offset = pv.peStart + stripe.extent * vg.extentSize;
      if (offset + perStripe > holder.volume.device.size) {
        return unreadable('E_FS_CORRUPT', `damaged LV metadata: extents beyond the end of ${describe(holder.volume)}`);
      }
      disk ??= holder.volume.disk;
      stripes.push({ device: holder.volume.device, offset });
      placed.push({ disk: holder.volume.disk, offset: (holder.volume.offset ?? 0) + offset });
    }
    const mapped = { start: segment.startExtent * vg.extentSize, length: segment.extentCount * vg.extentSize, stripeSize: segment.stripeSize };
    segments.push({ ...mapped, stripes });
    layout.push({ ...mapped, stripes: placed });
  }
  const device: BlockDevice = new LogicalVolumeDevice(name, segments);
  return { ...base, disk: disk ?? from.volume.disk, size, warnings, segments: layout, device };
}

function describe(volume: DraftVolume): string {
  return `${volume.name} of disk ${volume.disk}`;
}
