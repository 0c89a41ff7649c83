/**
 * `xfs_db` as the independent oracle of XFS extended attributes: what an inode's attribute
 * fork holds, as xfs_db 6.1 decodes it. The fork's shape from `print core.aformat`, short-form
 * entries from `print a`, and every block of a block fork (`bmap -a`, then `ablock N` and
 * `print`: leaf entries and their names and values, node blocks, remote value blocks), with
 * `stack` giving where each inode and block lies in the image, so that a fixture can put the
 * bytes it wants where xfs_db's `attr_set` left placeholders (xfs_db's own `write` of a long
 * value writes garbage in 6.1).
 */
import { xfsDb } from './xfs-db.js';

/** A structure of the image with a CRC-32C: an inode or a block. */
export interface XfsDbHolder {
  /** Byte offset in the image. */
  at: number;
  size: number;
  /** Offset of the little-endian CRC in the structure. */
  crcAt: number;
}

/** One attribute as xfs_db lists it. */
export interface XfsDbAttr {
  namespace: 'user' | 'trusted' | 'security';
  /** The name without namespace, as bytes. */
  name: Buffer;
  incomplete: boolean;
  value: Buffer;
  /** Where the value's bytes lie in the image, in order, and what holds each piece. */
  pieces: { at: number; length: number; holder: XfsDbHolder }[];
  /** Leaf entries: where the entry's flags byte lies. */
  flags?: { at: number; holder: XfsDbHolder };
  /** Remote values: their first logical block in the attribute fork. */
  valueBlock?: number;
}

/** An inode's attribute fork as xfs_db reads it. */
export interface XfsDbAttrFork {
  ino: number;
  /** `none` (no fork, or an empty one), `shortform`, `leaf` (logical block 0 is a leaf), `node`. */
  form: 'none' | 'shortform' | 'leaf' | 'node';
  attrs: XfsDbAttr[];
  /** Node form: the logical blocks of the leaves. */
  leafBlocks: number[];
  /** Where each block of a block fork lies in the image (logical block → byte offset). */
  blocks: Map<number, number>;
}

const LITERAL_OFFSET = 176;
const SHORTFORM_HEADER = 4;
const REMOTE_HEADER = 56;

/** The attribute fork of the inode at `path` in `image` (read only). */
export async function xfsDbAttrs(image: string, path: string): Promise<XfsDbAttrFork> {
  const geometry = fields(await xfsDb(image, ['sb 0', 'print blocksize inodesize']));
  const blockSize = Number(geometry.get('blocksize'));
  const inodeSize = Number(geometry.get('inodesize'));
  const head = await xfsDb(image, [`path ${path}`, 'stack', 'print v3.inumber core.forkoff core.aformat core.naextents', 'bmap -a']);
  const f = fields(head);
  const ino = Number(f.get('v3.inumber'));
  const inodeAt = byteOffset(head);
  const forkoff = Number(f.get('core.forkoff'));
  const aformat = f.get('core.aformat') ?? '';
  if (forkoff === 0) return { ino, form: 'none', attrs: [], leafBlocks: [], blocks: new Map() };
  if (aformat.startsWith('1 ')) {
    const inode: XfsDbHolder = { at: inodeAt, size: inodeSize, crcAt: 100 };
    const sf = fields(await xfsDb(image, [`inode ${ino}`, 'print a']));
    const count = Number(sf.get('a.sfattr.hdr.count'));
    const attrs: XfsDbAttr[] = [];
    let at = inodeAt + LITERAL_OFFSET + forkoff * 8 + SHORTFORM_HEADER;
    for (let i = 0; i < count; i++) {
      const get = (name: string): string => required(sf, `a.sfattr.list[${i}].${name}`);
      const nameLength = Number(get('namelen'));
      const valueLength = Number(get('valuelen'));
      const value = valueLength === 0 ? Buffer.alloc(0) : unescape(get('value'));
      attrs.push({
        namespace: namespaceOf(get('root'), get('secure')), name: unescape(get('name')), incomplete: false, value,
        pieces: [{ at: at + 3 + nameLength, length: valueLength, holder: inode }],
      });
      at += 3 + nameLength + valueLength;
    }
    return { ino, form: count === 0 ? 'none' : 'shortform', attrs, leafBlocks: [], blocks: new Map() };
  }
  const logical: number[] = [];
  for (const m of head.matchAll(/^attr offset (\d+) startblock \d+ \(\d+\/\d+\) count (\d+) flag \d$/gm)) {
    for (let b = 0; b < Number(m[2]); b++) logical.push(Number(m[1]) + b);
  }
  if (logical.length === 0) return { ino, form: 'none', attrs: [], leafBlocks: [], blocks: new Map() };
  const out = await xfsDb(image, logical.flatMap((b) => [`inode ${ino}`, `ablock ${b}`, `echo @@ ${b}`, 'stack', 'print']));
  const blocks = new Map<number, { at: number; fields: Map<string, string>; text: string }>();
  for (const section of out.split(/^@@ /m).slice(1)) {
    const block = Number(/^(\d+)/.exec(section)?.[1]);
    blocks.set(block, { at: byteOffset(section), fields: fields(section), text: section });
  }
  const magicOf = (b: number): string | undefined => blocks.get(b)?.fields.get('hdr.info.hdr.magic');
  const form = magicOf(0) === '0x3bee' ? 'leaf' : magicOf(0) === '0x3ebe' ? 'node' : undefined;
  if (form === undefined) throw new Error(`xfs_db: ${path}: attribute block 0 is neither a leaf nor a node`);
  const leafBlocks = logical.filter((b) => magicOf(b) === '0x3bee');
  const attrs: XfsDbAttr[] = [];
  for (const b of leafBlocks) {
    const leaf = blocks.get(b) as { at: number; fields: Map<string, string>; text: string };
    const holder: XfsDbHolder = { at: leaf.at, size: blockSize, crcAt: 12 };
    const entries = [...leaf.text.matchAll(/^(\d+):\[0x[0-9a-f]+,(\d+),([01]),([01]),([01]),([01])\]/gm)];
    for (const e of entries) {
      const i = Number(e[1]);
      const nameidx = Number(e[2]);
      const get = (name: string): string => required(leaf.fields, `nvlist[${i}].${name}`);
      const nameLength = Number(get('namelen'));
      const valueLength = Number(get('valuelen'));
      const attr: XfsDbAttr = {
        namespace: namespaceOf(e[4] as string, e[5] as string), name: unescape(get('name')), incomplete: e[3] === '1',
        value: Buffer.alloc(0), pieces: [], flags: { at: leaf.at + 80 + i * 8 + 6, holder },
      };
      if (e[6] === '1') {
        attr.value = valueLength === 0 ? Buffer.alloc(0) : unescape(get('value'));
        attr.pieces.push({ at: leaf.at + nameidx + 3 + nameLength, length: valueLength, holder });
      } else {
        attr.valueBlock = Number(get('valueblk'));
        const parts: Buffer[] = [];
        for (let done = 0, vb = attr.valueBlock; done < valueLength; vb++) {
          const remote = blocks.get(vb);
          if (remote === undefined || remote.fields.get('hdr.magic') !== '0x5841524d') throw new Error(`xfs_db: ${path}: remote block ${vb} is missing`);
          const bytes = Number(remote.fields.get('hdr.bytes'));
          if (Number(remote.fields.get('hdr.offset')) !== done) throw new Error(`xfs_db: ${path}: remote block ${vb} is out of order`);
          parts.push(unescape(required(remote.fields, 'data')).subarray(0, bytes));
          attr.pieces.push({ at: remote.at + REMOTE_HEADER, length: bytes, holder: { at: remote.at, size: blockSize, crcAt: 12 } });
          done += bytes;
        }
        attr.value = Buffer.concat(parts);
      }
      if (attr.value.length !== valueLength) throw new Error(`xfs_db: ${path}: value of ${attr.name.toString('latin1')} is ${attr.value.length} bytes, not ${valueLength}`);
      attrs.push(attr);
    }
  }
  return { ino, form, attrs, leafBlocks: form === 'node' ? leafBlocks : [], blocks: new Map([...blocks].map(([b, { at }]) => [b, at])) };
}

/** `name = value` lines of xfs_db output. */
function fields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^(\S+) = (.*)$/gm)) out.set(m[1] as string, m[2] as string);
  return out;
}

function required(map: Map<string, string>, name: string): string {
  const value = map.get(name);
  if (value === undefined) throw new Error(`xfs_db printed no ${name}`);
  return value;
}

/** The `byte offset N` that `stack` prints for the current location. */
function byteOffset(text: string): number {
  const m = /byte offset (\d+), length/.exec(text);
  if (m === null) throw new Error('xfs_db stack printed no byte offset');
  return Number(m[1]);
}

function namespaceOf(root: string, secure: string): XfsDbAttr['namespace'] {
  if (root === '1' && secure === '1') throw new Error('xfs_db: an attribute in two namespaces');
  return root === '1' ? 'trusted' : secure === '1' ? 'security' : 'user';
}

/**
 * xfs_db's escapes of control characters: a backslash, then the byte + ('a' - 7): `\a` `\b`
 * for 7 and 8 as in C, but `\c` `\d` `\e` `\f` `\g` for tab, newline, vertical tab, form
 * feed and carriage return (db/fprint.c fp_charns).
 */
const ESCAPES: Record<string, number> = { a: 7, b: 8, c: 9, d: 10, e: 11, f: 12, g: 13 };

/** The bytes of a string as xfs_db prints it: in double quotes, `\ooo` (octal), the escapes above, `\?` `\'` `\"` `\\`. */
export function unescape(printed: string): Buffer {
  const m = /^"(.*)"$/s.exec(printed);
  if (m === null) throw new Error(`xfs_db printed ${printed.slice(0, 40)}, not a string`);
  const text = m[1] as string;
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c !== '\\') {
      out.push(c.charCodeAt(0));
      continue;
    }
    const octal = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4));
    if (octal !== null) {
      out.push(parseInt(octal[0], 8));
      i += octal[0].length;
      continue;
    }
    const next = text[i + 1] as string;
    out.push(ESCAPES[next] ?? next.charCodeAt(0));
    i += 1;
  }
  return Buffer.from(out);
}
