/**
 * The VMDK text descriptor (Virtual Disk Format 1.1, §"The Descriptor File"): a file of its
 * own (`x.vmdk` beside `x-flat.vmdk` or `x-s001.vmdk`…) or embedded in a sparse extent.
 * Lines, `#` starting a comment:
 * ```
 * # Disk DescriptorFile
 * version=1
 * CID=fffffffe                      content id, 8 hex digits, changes on every write
 * parentCID=ffffffff                the parent's CID when this is a delta; ffffffff: none
 * createType="monolithicSparse"     the layout, see below
 * parentFileNameHint="base.vmdk"    the parent, relative to this descriptor's folder
 * # Extent description
 * RW 2097152 SPARSE "x-s001.vmdk"   access, size in sectors, type, file name
 * RW 2097152 FLAT "x-flat.vmdk" 0   FLAT adds the first sector of the data in that file
 * RW 4096 ZERO                      reads as zeros, no file
 * # The Disk Data Base
 * ddb.adapterType = "ide"           ddb.* entries describe the VM's view; ignored here
 * ```
 * Access is RW, RDONLY or NOACCESS; types are FLAT, SPARSE, ZERO, VMFS (flat, on ESXi),
 * VMFSSPARSE (ESXi delta), VMFSRDM, VMFSRAW and SESPARSE. The extents follow each other in
 * the virtual disk in the order listed.
 *
 * Extent file names are resolved in the descriptor's folder and must stay in it: absolute
 * names and `..` are refused (QEMU follows them; a descriptor from an untrusted disk must not
 * make Coffer read `/etc/shadow` into a backup). The parent hint may be absolute: a backing
 * chain may legitimately span folders, as qcow2 backing files do.
 */
import type { Complaints } from './sparse-header.js';

/** Descriptors larger than this are refused (QEMU reads at most 1 MiB). */
export const MAX_DESCRIPTOR_BYTES = 1024 * 1024;
/** More extent lines than this are refused: 4096 extents of 2 GiB are 8 TiB. */
export const MAX_EXTENTS = 4096;
/** parentCID of a disk without a parent. */
const NO_PARENT_CID = 0xffff_ffff;

/** Who may use an extent: read-write, read-only, or nobody (Coffer refuses to read those). */
export type ExtentAccess = 'RW' | 'RDONLY' | 'NOACCESS';
/** The storage of an extent: see the module comment. */
export type ExtentType = 'FLAT' | 'SPARSE' | 'ZERO' | 'VMFS' | 'VMFSSPARSE' | 'VMFSRDM' | 'VMFSRAW' | 'SESPARSE';
const EXTENT_TYPES: readonly string[] = ['FLAT', 'SPARSE', 'ZERO', 'VMFS', 'VMFSSPARSE', 'VMFSRDM', 'VMFSRAW', 'SESPARSE'];

/** One extent line. */
export interface ExtentLine {
  access: ExtentAccess;
  /** Size in sectors, > 0. */
  sectors: number;
  type: ExtentType;
  /** The extent's file name, relative to the descriptor's folder; null for ZERO. */
  fileName: string | null;
  /** FLAT: the sector in the file where the extent's data starts; 0 otherwise. */
  offset: number;
}

/** A parsed descriptor. */
export interface VmdkDescriptor {
  /** The `version=` line, null when absent. */
  version: number | null;
  /** Content id, null when absent. */
  cid: number | null;
  /** The parent's content id, null when absent or ffffffff (no parent). */
  parentCid: number | null;
  /** `createType`, as written (null when absent). */
  createType: string | null;
  /** `parentFileNameHint`, null when absent. */
  parentFileNameHint: string | null;
  extents: ExtentLine[];
}

const EXTENT_LINE = /^(RW|RDONLY|NOACCESS)\s+(\S+)\s+(\S+)(?:\s+"([^"]*)"(?:\s+(\S+))?)?\s*$/;
const KEY_VALUE = /^([A-Za-z][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$/;

/** Options of {@link parseDescriptor}. */
export interface ParseDescriptorOptions {
  /**
   * The descriptor is embedded in a sparse extent, whose extent line only names the file
   * itself (QEMU ignores it too): extent lines are skipped, not checked. Default false.
   */
  embedded?: boolean;
}

/**
 * Parses descriptor text. Throws `E_IMAGE_INVALID` (through `image`) for malformed extent
 * lines, bad ids, extent file names that leave the descriptor's folder, and text over 1 MiB.
 * Unknown keys and the disk database are ignored.
 * @example parseDescriptor('createType="monolithicFlat"\nRW 2048 FLAT "d-flat.vmdk" 0\n', file)
 *   // { createType: 'monolithicFlat', extents: [{ access: 'RW', sectors: 2048, type: 'FLAT', fileName: 'd-flat.vmdk', offset: 0 }], … }
 */
export function parseDescriptor(text: string, image: Complaints, options: ParseDescriptorOptions = {}): VmdkDescriptor {
  if (text.length > MAX_DESCRIPTOR_BYTES) throw image.invalid(`the VMDK descriptor is longer than ${MAX_DESCRIPTOR_BYTES} bytes`);
  const descriptor: VmdkDescriptor = { version: null, cid: null, parentCid: null, createType: null, parentFileNameHint: null, extents: [] };
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `descriptor line ${index + 1}`;
    if (/^(RW|RDONLY|NOACCESS)\s/.test(line)) {
      if (options.embedded === true) continue;
      if (descriptor.extents.length >= MAX_EXTENTS) throw image.invalid(`the VMDK descriptor lists more than ${MAX_EXTENTS} extents`);
      descriptor.extents.push(parseExtentLine(line, where, image));
      continue;
    }
    const pair = KEY_VALUE.exec(line);
    if (pair === null) continue;
    const key = pair[1] as string;
    const value = unquote(pair[2] as string);
    switch (key) {
      case 'version':
        if (!/^\d{1,6}$/.test(value)) throw image.invalid(`${where}: version ${JSON.stringify(value)} is not a number`);
        descriptor.version = Number(value);
        break;
      case 'CID':
        descriptor.cid = parseCid(value, where, image);
        break;
      case 'parentCID': {
        const cid = parseCid(value, where, image);
        descriptor.parentCid = cid === NO_PARENT_CID ? null : cid;
        break;
      }
      case 'createType':
        descriptor.createType = value;
        break;
      case 'parentFileNameHint':
        if (value === '' || value.includes('\u0000')) throw image.invalid(`${where}: parentFileNameHint ${JSON.stringify(value)} is not a file name`);
        descriptor.parentFileNameHint = value;
        break;
    }
  }
  return descriptor;
}

function parseExtentLine(line: string, where: string, image: Complaints): ExtentLine {
  const match = EXTENT_LINE.exec(line);
  if (match === null) throw image.invalid(`${where}: malformed extent line ${JSON.stringify(line)}`);
  const [, access, sectorsText, type, fileName, offsetText] = match as unknown as [string, ExtentAccess, string, string, string | undefined, string | undefined];
  const sectors = parseSectors(sectorsText, `${where}: extent size`, image);
  if (sectors === 0) throw image.invalid(`${where}: extent of 0 sectors`);
  if (!EXTENT_TYPES.includes(type)) throw image.unsupported(`VMDK extent type ${JSON.stringify(type)}`);
  const extentType = type as ExtentType;
  if (extentType === 'ZERO') {
    if (fileName !== undefined) throw image.invalid(`${where}: a ZERO extent names a file`);
    return { access, sectors, type: extentType, fileName: null, offset: 0 };
  }
  if (fileName === undefined) throw image.invalid(`${where}: a ${type} extent without a file name`);
  checkExtentFileName(fileName, where, image);
  if (extentType === 'FLAT') {
    if (offsetText === undefined) throw image.invalid(`${where}: a FLAT extent without its offset`);
    return { access, sectors, type: extentType, fileName, offset: parseSectors(offsetText, `${where}: FLAT offset`, image) };
  }
  if (offsetText !== undefined) throw image.invalid(`${where}: a ${type} extent with an offset`);
  return { access, sectors, type: extentType, fileName, offset: 0 };
}

/**
 * Refuses names that could leave the descriptor's folder: empty, NUL, absolute (`/x`, `\x`,
 * `C:…`) or with a `..` component (either separator, as descriptors may come from Windows).
 */
function checkExtentFileName(name: string, where: string, image: Complaints): void {
  const escapes =
    name === '' ||
    name.includes('\u0000') ||
    /^[/\\]/.test(name) ||
    /^[A-Za-z]:/.test(name) ||
    name.split(/[/\\]/).some((part) => part === '..');
  if (escapes) throw image.invalid(`${where}: extent file ${JSON.stringify(name)} lies outside the descriptor's folder`);
}

function parseSectors(text: string, what: string, image: Complaints): number {
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text) * 512)) throw image.invalid(`${what} ${JSON.stringify(text)} is not a sector count`);
  return Number(text);
}

function parseCid(text: string, where: string, image: Complaints): number {
  if (!/^[0-9a-fA-F]{1,8}$/.test(text)) throw image.invalid(`${where}: content id ${JSON.stringify(text)} is not 8 hex digits`);
  return Number.parseInt(text, 16);
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}
