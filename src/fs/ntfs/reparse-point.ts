import type { FsNodeType } from '../filesystem.js';
import { fsCorrupt } from '../fs-errors.js';
import { decodeUtf16 } from './attribute.js';

/**
 * $REPARSE_POINT (type 0xC0):
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x00 | 4 | reparse tag |
 * | 0x04 | 2 | data length |
 * | 0x06 | 2 | reserved |
 * | 0x08 | … | data |
 *
 * Symbolic links (IO_REPARSE_TAG_SYMLINK, 0xA000000C) and junctions (IO_REPARSE_TAG_MOUNT_POINT,
 * 0xA0000003) share a data layout: u16 substitute name offset, u16 its length, u16 print name
 * offset, u16 its length (bytes, relative to the path buffer), then for symlinks only a u32
 * of flags (1 = relative target), then the path buffer (UTF-16LE).
 * WSL symlinks (IO_REPARSE_TAG_LX_SYMLINK, 0xA000001D): u32 version (2), then the target in
 * UTF-8. WSL special files carry only their tag: AF_UNIX 0x80000023, LX_FIFO 0x80000024,
 * LX_CHR 0x80000025, LX_BLK 0x80000026.
 *
 * Targets are given POSIX-ish (see {@link posixTarget}).
 */
export const ReparseTag = {
  MOUNT_POINT: 0xa0000003,
  SYMLINK: 0xa000000c,
  LX_SYMLINK: 0xa000001d,
  AF_UNIX: 0x80000023,
  LX_FIFO: 0x80000024,
  LX_CHR: 0x80000025,
  LX_BLK: 0x80000026,
} as const;

const SYMLINK_FLAG_RELATIVE = 1;

export interface ReparsePoint {
  tag: number;
  /** The node type the tag makes (undefined: the tag does not change the type). */
  nodeType?: FsNodeType;
  /** For symlinks and junctions: the target, POSIX-ish. */
  target?: string;
  /** `reparse:symlink`, `reparse:junction`, `reparse:wsl-symlink`, or `reparse:0x…`. */
  attribute: string;
}

export function parseReparsePoint(value: Uint8Array, what: string): ReparsePoint {
  if (value.length < 8) throw fsCorrupt('ntfs', `${what}: $REPARSE_POINT of ${value.length} bytes`);
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const tag = view.getUint32(0, true);
  const dataLength = view.getUint16(4, true);
  if (8 + dataLength > value.length) throw fsCorrupt('ntfs', `${what}: reparse data runs past its attribute`);
  const data = value.subarray(8, 8 + dataLength);
  switch (tag) {
    case ReparseTag.SYMLINK:
    case ReparseTag.MOUNT_POINT: {
      const symlink = tag === ReparseTag.SYMLINK;
      const header = symlink ? 12 : 8;
      if (data.length < header) throw fsCorrupt('ntfs', `${what}: link reparse data too short`);
      const d = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const flags = symlink ? d.getUint32(8, true) : 0;
      const name = (offset: number, length: number): string => {
        if (header + offset + length > data.length || length % 2 !== 0) throw fsCorrupt('ntfs', `${what}: link target runs past the reparse data`);
        return decodeUtf16(data.subarray(header + offset, header + offset + length));
      };
      const substitute = name(d.getUint16(0, true), d.getUint16(2, true));
      const print = name(d.getUint16(4, true), d.getUint16(6, true));
      const relative = symlink && (flags & SYMLINK_FLAG_RELATIVE) !== 0;
      const target = posixTarget(print !== '' ? print : substitute, relative);
      return { tag, nodeType: 'symlink', target, attribute: symlink ? 'reparse:symlink' : 'reparse:junction' };
    }
    case ReparseTag.LX_SYMLINK: {
      if (data.length < 4) throw fsCorrupt('ntfs', `${what}: WSL symlink reparse data too short`);
      return { tag, nodeType: 'symlink', target: new TextDecoder().decode(data.subarray(4)), attribute: 'reparse:wsl-symlink' };
    }
    case ReparseTag.AF_UNIX:
      return { tag, nodeType: 'socket', attribute: 'reparse:wsl-socket' };
    case ReparseTag.LX_FIFO:
      return { tag, nodeType: 'fifo', attribute: 'reparse:wsl-fifo' };
    case ReparseTag.LX_CHR:
      return { tag, nodeType: 'char-device', attribute: 'reparse:wsl-char-device' };
    case ReparseTag.LX_BLK:
      return { tag, nodeType: 'block-device', attribute: 'reparse:wsl-block-device' };
    default:
      return { tag, attribute: `reparse:0x${tag.toString(16).padStart(8, '0')}` };
  }
}

/**
 * A Windows link target, POSIX-ish. Backslashes become slashes. A relative target stays
 * relative (`..\docs\a.txt` → `../docs/a.txt`). An absolute one loses its NT prefix
 * (`\??\`, `\\?\`) and its drive letter, and becomes absolute from the root of the volume
 * (`C:\etc\hostname` → `/etc/hostname`): the volume being read is most often the one the
 * link pointed into, and this is how a Linux symlink captured by wimlib comes back. A UNC
 * target keeps its server (`\??\UNC\srv\share\f` → `//srv/share/f`); a volume GUID path
 * keeps its GUID as the first component (`\??\Volume{…}\d` → `/Volume{…}/d`).
 */
export function posixTarget(target: string, relative: boolean): string {
  let t = target;
  if (!relative) {
    if (t.startsWith('\\??\\') || t.startsWith('\\\\?\\')) t = t.slice(4);
    if (/^UNC\\/i.test(t)) t = `\\\\${t.slice(4)}`;
    else if (/^[A-Za-z]:(\\|$)/.test(t)) t = t.slice(2) === '' ? '\\' : t.slice(2);
    else if (!t.startsWith('\\')) t = `\\${t}`;
  }
  return t.replace(/\\/g, '/');
}
