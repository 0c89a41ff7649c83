import { CofferError } from '../../errors/index.js';
import { lvmChecksum } from '../checksums.js';
import { u64 } from '../read-bytes.js';

/**
 * The LVM2 physical volume label (LVM's `lib/label/label.h`, `lib/format_text/layout.h`): in
 * one of the first four 512-byte sectors of the PV (normally sector 1). Little-endian:
 *
 * label_header, at the start of the sector:
 *   0   8  "LABELONE"
 *   8   8  this sector's number (0..3)
 *  16   4  LVM checksum of bytes 20..511 of the sector
 *  20   4  offset of the pv_header from the start of the sector (normally 32)
 *  24   8  "LVM2 001"
 * pv_header, at that offset:
 *   0  32  PV UUID, 32 characters without dashes
 *  32   8  device size in bytes
 *  40  …   data areas: {offset u64, size u64} in bytes from the PV's start, until {0, 0};
 *          then metadata areas, the same way, until {0, 0}
 * The data area's offset is `pe_start`, where extent 0 begins (its size is 0: to the end).
 */
export const LABEL_SECTORS = 4;
const SECTOR = 512;
const MAX_AREAS = 8;

export interface DiskArea {
  offset: number;
  size: number;
}

export interface PvLabel {
  /** The UUID as LVM prints it: 6-4-4-4-4-4-6 characters. */
  uuid: string;
  deviceSize: number;
  dataAreas: DiskArea[];
  metadataAreas: DiskArea[];
}

/**
 * The PV label within `start` (the first {@link LABEL_SECTORS} sectors of a volume), undefined
 * when there is none; throws E_FS_CORRUPT when a label is there but is damaged.
 */
export function findPvLabel(start: Buffer): PvLabel | undefined {
  for (let sector = 0; sector < LABEL_SECTORS && (sector + 1) * SECTOR <= start.length; sector++) {
    const bytes = start.subarray(sector * SECTOR, (sector + 1) * SECTOR);
    if (bytes.toString('latin1', 0, 8) !== 'LABELONE') continue;
    if (bytes.toString('latin1', 24, 32) !== 'LVM2 001') throw corrupt(`label type ${JSON.stringify(bytes.toString('latin1', 24, 32))} is not LVM2 001`);
    if (u64(bytes, 8) !== sector) throw corrupt(`label in sector ${sector} says it lies in sector ${u64(bytes, 8)}`);
    if (lvmChecksum(bytes.subarray(20)) !== bytes.readUInt32LE(16)) throw corrupt('label checksum mismatch');
    const at = bytes.readUInt32LE(20);
    if (at < 32 || at + 40 > SECTOR) throw corrupt(`pv_header offset ${at} is out of range`);
    const uuid = bytes.toString('latin1', at, at + 32);
    if (!/^[A-Za-z0-9!#+.^_`|~-]{32}$/.test(uuid)) throw corrupt('PV UUID has characters LVM never writes');
    let position = at + 40;
    const readList = (): DiskArea[] => {
      const areas: DiskArea[] = [];
      for (;;) {
        if (position + 16 > SECTOR) throw corrupt('area list runs past the label sector');
        const area = { offset: u64(bytes, position), size: u64(bytes, position + 8) };
        position += 16;
        if (area.offset === 0) return areas;
        if (areas.length >= MAX_AREAS) throw corrupt(`more than ${MAX_AREAS} areas`);
        areas.push(area);
      }
    };
    const dataAreas = readList();
    const metadataAreas = readList();
    return { uuid: formatLvmUuid(uuid), deviceSize: u64(bytes, at + 32), dataAreas, metadataAreas };
  }
  return undefined;
}

/** 32 characters → `xxxxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxxxx`, as LVM prints UUIDs. */
export function formatLvmUuid(raw: string): string {
  const plain = raw.replace(/-/g, '');
  if (plain.length !== 32) return raw;
  return [plain.slice(0, 6), plain.slice(6, 10), plain.slice(10, 14), plain.slice(14, 18), plain.slice(18, 22), plain.slice(22, 26), plain.slice(26)].join('-');
}

function corrupt(what: string): CofferError {
  return new CofferError('E_FS_CORRUPT', `lvm: physical volume label: ${what}`);
}
