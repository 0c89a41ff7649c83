import { CofferError } from '../../errors/index.js';
import { formatLvmUuid } from './pv-label.js';
import type { ConfigSection, ConfigValue } from './config-text.js';

/**
 * The parts of LVM2 VG metadata (see config-text.ts for the syntax) that map logical volumes
 * to bytes. Sizes in the text are in 512-byte sectors; here they are in bytes.
 *
 *   <vg name> {
 *     id = "…"  seqno = N  extent_size = <sectors>
 *     physical_volumes { pv0 { id = "<PV UUID>"  pe_start = <sectors>  pe_count = N } … }
 *     logical_volumes {
 *       <lv name> {
 *         id = "…"  status = ["READ", "WRITE", "VISIBLE"]  segment_count = N
 *         segment1 { start_extent = N  extent_count = N  type = "striped"
 *                    stripe_count = N  stripe_size = <sectors, when N > 1>
 *                    stripes = ["pv0", <first extent>, "pv1", <first extent>, …] }
 *         (other types: "snapshot" with origin / cow_store, "thin", "raid1", "mirror",
 *          "cache", … whose data Coffer does not map)
 *       } …
 *     }
 *   }
 */
const SECTOR = 512;
export const MAX_LVS = 10_000;
export const MAX_SEGMENTS = 10_000;
export const MAX_STRIPES = 128;

export interface VgMetadata {
  name: string;
  id: string;
  seqno: number;
  extentSize: number;
  /** By the metadata's own PV names (`pv0`…). */
  pvs: Map<string, PvMetadata>;
  lvs: LvMetadata[];
}

export interface PvMetadata {
  uuid: string;
  peStart: number;
  peCount: number;
}

export interface LvMetadata {
  name: string;
  id: string;
  visible: boolean;
  segments: SegmentMetadata[];
  /** Why this LV's segments cannot be trusted, when its entry is damaged. */
  problem?: string;
}

export interface SegmentMetadata {
  startExtent: number;
  extentCount: number;
  type: string;
  /** Striped (and linear, one stripe) segments: bytes per stripe chunk (0 when one stripe). */
  stripeSize: number;
  /** Striped segments: each stripe's PV (by metadata name) and first extent. */
  stripes: { pv: string; extent: number }[];
  /** Snapshot segments. */
  origin?: string;
  cowStore?: string;
}

/** Interprets parsed metadata text; throws E_FS_CORRUPT when the VG itself is unusable. */
export function interpretVg(root: ConfigSection): VgMetadata {
  const found = [...root].find(([, v]) => v instanceof Map && v.has('extent_size') && v.has('physical_volumes'));
  if (found === undefined) throw corrupt('no volume group section in the metadata text');
  const [name, vg] = found as [string, ConfigSection];
  const extentSectors = integer(vg, 'extent_size', name);
  if (extentSectors <= 0 || extentSectors > 2 ** 32) throw corrupt(`${name}: extent size ${extentSectors} sectors is out of range`);
  const pvs = new Map<string, PvMetadata>();
  for (const [pvName, pv] of sections(section(vg, 'physical_volumes', name))) {
    pvs.set(pvName, {
      uuid: formatLvmUuid(text(pv, 'id', `${name}/${pvName}`)),
      peStart: integer(pv, 'pe_start', `${name}/${pvName}`) * SECTOR,
      peCount: integer(pv, 'pe_count', `${name}/${pvName}`),
    });
  }
  const lvs: LvMetadata[] = [];
  const lvSection = vg.get('logical_volumes');
  if (lvSection instanceof Map) {
    for (const [lvName, lv] of sections(lvSection)) {
      if (lvs.length >= MAX_LVS) throw corrupt(`${name}: more than ${MAX_LVS} logical volumes`);
      lvs.push(interpretLv(lvName, lv));
    }
  }
  return {
    name,
    id: typeof vg.get('id') === 'string' ? (vg.get('id') as string) : '',
    seqno: typeof vg.get('seqno') === 'number' ? (vg.get('seqno') as number) : 0,
    extentSize: extentSectors * SECTOR,
    pvs,
    lvs,
  };
}

function interpretLv(name: string, lv: ConfigSection): LvMetadata {
  const status = lv.get('status');
  const visible = Array.isArray(status) && status.includes('VISIBLE');
  const id = typeof lv.get('id') === 'string' ? (lv.get('id') as string) : '';
  try {
    const segments: SegmentMetadata[] = [];
    for (const [key, segment] of sections(lv)) {
      if (!/^segment\d+$/.test(key)) continue;
      if (segments.length >= MAX_SEGMENTS) throw corrupt(`more than ${MAX_SEGMENTS} segments`);
      segments.push(interpretSegment(segment, `${name}/${key}`));
    }
    segments.sort((a, b) => a.startExtent - b.startExtent);
    let next = 0;
    for (const segment of segments) {
      if (segment.startExtent !== next) throw corrupt(`segments leave a gap or overlap at extent ${next}`);
      next += segment.extentCount;
    }
    if (segments.length === 0) throw corrupt('no segments');
    return { name, id, visible, segments };
  } catch (error) {
    if (!(error instanceof CofferError)) throw error;
    return { name, id, visible, segments: [], problem: error.message };
  }
}

function interpretSegment(segment: ConfigSection, where: string): SegmentMetadata {
  const startExtent = integer(segment, 'start_extent', where);
  const extentCount = integer(segment, 'extent_count', where);
  if (extentCount <= 0) throw corrupt(`${where}: extent count ${extentCount}`);
  const type = text(segment, 'type', where);
  const base = { startExtent, extentCount, type, stripeSize: 0, stripes: [] };
  if (type === 'snapshot') {
    const origin = segment.get('origin');
    const cowStore = segment.get('cow_store');
    return { ...base, ...(typeof origin === 'string' ? { origin } : {}), ...(typeof cowStore === 'string' ? { cowStore } : {}) };
  }
  if (type !== 'striped') return base;
  const count = integer(segment, 'stripe_count', where);
  if (count < 1 || count > MAX_STRIPES) throw corrupt(`${where}: ${count} stripes`);
  if (extentCount % count !== 0) throw corrupt(`${where}: ${extentCount} extents do not divide into ${count} stripes`);
  const stripeSize = count > 1 ? integer(segment, 'stripe_size', where) * SECTOR : 0;
  if (count > 1 && stripeSize <= 0) throw corrupt(`${where}: stripe size ${stripeSize}`);
  const list = segment.get('stripes');
  if (!Array.isArray(list) || list.length !== count * 2) throw corrupt(`${where}: stripes is not a list of ${count} PV and extent pairs`);
  const stripes: { pv: string; extent: number }[] = [];
  for (let i = 0; i < count; i++) {
    const pv = list[2 * i];
    const extent = list[2 * i + 1];
    if (typeof pv !== 'string' || typeof extent !== 'number' || !Number.isSafeInteger(extent) || extent < 0) {
      throw corrupt(`${where}: stripe ${i} is not a PV name and an extent`);
    }
    stripes.push({ pv, extent });
  }
  return { ...base, stripeSize, stripes };
}

function* sections(parent: ConfigSection): Iterable<[string, ConfigSection]> {
  for (const [key, value] of parent) if (value instanceof Map) yield [key, value];
}

function section(parent: ConfigSection, key: string, where: string): ConfigSection {
  const value = parent.get(key);
  if (!(value instanceof Map)) throw corrupt(`${where}: no ${key} section`);
  return value;
}

function integer(parent: ConfigSection, key: string, where: string): number {
  const value: ConfigValue | undefined = parent.get(key);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw corrupt(`${where}: ${key} is not a whole number`);
  return value;
}

function text(parent: ConfigSection, key: string, where: string): string {
  const value = parent.get(key);
  if (typeof value !== 'string') throw corrupt(`${where}: ${key} is not a string`);
  return value;
}

function corrupt(what: string): CofferError {
  return new CofferError('E_FS_CORRUPT', `lvm: ${what}`);
}
