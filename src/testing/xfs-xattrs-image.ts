/**
 * An XFS v5 image whose inodes carry extended attributes in every shape XFS stores them,
 * made without mounting: `mkfs.xfs -p` writes a small tree, `xfs_db -x attr_set` adds the
 * attributes (through xfsprogs' own attribute code, so short-form, leaf, node and remote
 * forms are exactly what XFS builds), then the bytes of each value are put where xfs_db
 * (testing/xfs-db-attrs.ts) says they lie, CRCs recomputed (attr_set writes placeholder
 * bytes, and xfs_db 6.1's `write` of a long value writes garbage), and `xfs_repair -n`
 * checks the result, ACLs included. Last, one leaf entry is marked incomplete (an attribute
 * a crash left half made, which no reader lists; xfs_repair would report it).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cachedFixture, fixtureDir, runTool, seededBytes } from './disks.js';
import { xfsDbAttrs, type XfsDbAttrFork, type XfsDbHolder } from './xfs-db-attrs.js';

const MiB = 1024 * 1024;

/** One attribute the image holds, in XFS terms (ACLs are `trusted` `SGI_ACL_FILE`/`SGI_ACL_DEFAULT`). */
export interface XfsAttrRecipe {
  namespace: 'user' | 'trusted' | 'security';
  name: string;
  value: Buffer;
}

/** One path of the image, its attributes and the form XFS gives them. */
export interface XfsXattrsEntry {
  path: string;
  type: 'file' | 'directory' | 'symlink';
  form: XfsDbAttrFork['form'];
  attrs: XfsAttrRecipe[];
  /** ACLs, as `setfacl --set` takes them (their xattr form, by the host's own setfacl, is the oracle of the conversion). */
  acl?: { access?: string; default?: string };
  /** Attributes set and removed again (the fork stays, empty). */
  removed?: XfsAttrRecipe[];
  /** Names of attributes marked incomplete after the check (no reader lists them). */
  incomplete?: string[];
  /** Permission bits (default 0o644, folders 0o755); with an ACL, the group bits are its mask, as Linux keeps them. */
  mode?: number;
}

/** A selinux label as the kernel stores it (NUL-terminated). */
export const XFS_SELINUX_LABEL = Buffer.from('system_u:object_r:etc_t:s0\0');

const seeded = (name: string, length: number): Buffer => seededBytes(createHash('sha256').update(name).digest().readUInt32BE(0), length);
const attr = (namespace: XfsAttrRecipe['namespace'], name: string, value: Buffer | number): XfsAttrRecipe =>
  ({ namespace, name, value: typeof value === 'number' ? seeded(`${namespace}.${name}`, value) : value });
const BIG_ACL = ['user::rw-', ...Array.from({ length: 300 }, (_, i) => `user:${2000 + i}:r--`), 'group::r--', 'mask::r--', 'other::r--'].join(',');

/** What {@link buildXattrsXfsImage} holds, path by path. */
export const XFS_XATTRS_TREE: readonly XfsXattrsEntry[] = [
  {
    path: '/shortform.txt', type: 'file', form: 'shortform', mode: 0o664,
    attrs: [attr('user', 'colour', Buffer.from('blue')), attr('trusted', 'secret', Buffer.from('t1')), attr('security', 'selinux', XFS_SELINUX_LABEL)],
    acl: { access: 'user::rw-,user:1234:rw-,group::r--,mask::rw-,other::r--' },
  },
  {
    path: '/shared', type: 'directory', form: 'shortform', attrs: [],
    acl: { access: 'user::rwx,group::r-x,group:55:r--,mask::r-x,other::r-x', default: 'user::rwx,user:1234:r-x,group::r-x,mask::r-x,other::r-x' },
  },
  { path: '/shared/inner.txt', type: 'file', form: 'none', attrs: [] },
  {
    path: '/leaf.txt', type: 'file', form: 'leaf',
    attrs: [
      ...Array.from({ length: 20 }, (_, i) => attr('user', `leaf${String(i).padStart(2, '0')}`, 100)),
      attr('trusted', 'long', 300), attr('security', 'selinux', XFS_SELINUX_LABEL),
      attr('user', 'half-made', 20),
    ],
    incomplete: ['half-made'],
  },
  { path: '/node.txt', type: 'file', form: 'node', attrs: Array.from({ length: 200 }, (_, i) => attr('user', `node${String(i).padStart(3, '0')}`, 60)) },
  {
    path: '/remote.txt', type: 'file', form: 'leaf',
    attrs: [attr('user', 'small', 8), attr('user', 'remote', 5000), attr('security', 'huge', 65536)],
    acl: { access: BIG_ACL },
  },
  { path: '/link', type: 'symlink', form: 'shortform', attrs: [attr('security', 'selinux', XFS_SELINUX_LABEL), attr('trusted', 'link', Buffer.from('1'))] },
  { path: '/emptied.txt', type: 'file', form: 'none', attrs: [], removed: [attr('user', 'gone', 4)] },
  { path: '/plain.txt', type: 'file', form: 'none', attrs: [] },
];

/**
 * The path of a cached 300 MiB (sparse) XFS v5 image holding {@link XFS_XATTRS_TREE}; each
 * entry's attribute fork checked to have the form the table says.
 */
export async function buildXattrsXfsImage(): Promise<string> {
  const tree = createHash('sha256').update(JSON.stringify(XFS_XATTRS_TREE)).digest('hex');
  return cachedFixture('xfs-xattrs', { kind: 'xfs-xattrs', version: 1, tree }, async (tmp) => {
    const src = await fs.mkdtemp(path.join(await fixtureDir(), '.xfs-xattrs-src-'));
    try {
      await fs.writeFile(tmp, '');
      await fs.truncate(tmp, 300 * MiB);
      await runTool('mkfs.xfs', ['-q', '-f', '-K', '-L', 'xattrs', '-m', 'uuid=5b0c7a52-6f1e-4c1d-8a3e-2f9d0c4b7e61', '-d', 'agcount=2', '-p', await writeProto(src), tmp]);
      const commands: string[] = [];
      for (const entry of XFS_XATTRS_TREE) {
        commands.push(`path ${entry.path}`);
        for (const a of [...allAttrs(entry), ...(entry.removed ?? [])]) commands.push(`attr_set ${FLAG[a.namespace]} -v ${a.value.length} ${a.name}`);
        for (const a of entry.removed ?? []) commands.push(`attr_remove ${FLAG[a.namespace]} ${a.name}`);
      }
      await runTool('xfs_db', ['-x', ...commands.flatMap((c) => ['-c', c]), tmp]);
      const handle = await fs.open(tmp, 'r+');
      try {
        for (const entry of XFS_XATTRS_TREE) await placeValues(handle, tmp, entry);
        await runTool('xfs_repair', ['-n', tmp]);
        for (const entry of XFS_XATTRS_TREE) await markIncomplete(handle, tmp, entry);
      } finally {
        await handle.close();
      }
      for (const entry of XFS_XATTRS_TREE) {
        const fork = await xfsDbAttrs(tmp, entry.path);
        if (fork.form !== entry.form) throw new Error(`${entry.path}: xfs_db made a ${fork.form} attribute fork, not ${entry.form}`);
      }
    } finally {
      await fs.rm(src, { recursive: true, force: true });
    }
  });
}

/** The attributes of an entry as XFS holds them: its own, then its ACLs in XFS's format. */
export function allAttrs(entry: XfsXattrsEntry): XfsAttrRecipe[] {
  const out = [...entry.attrs];
  if (entry.acl?.access !== undefined) out.push({ namespace: 'trusted', name: 'SGI_ACL_FILE', value: xfsAclBytes(entry.acl.access) });
  if (entry.acl?.default !== undefined) out.push({ namespace: 'trusted', name: 'SGI_ACL_DEFAULT', value: xfsAclBytes(entry.acl.default) });
  return out;
}

/**
 * What Linux's getxattr gives for an entry of {@link XFS_XATTRS_TREE} (name → value in hex):
 * its attributes under their namespace prefix, incomplete ones left out, and its ACLs as
 * `system.posix_acl_access`/`_default` in the form the host's own `setfacl` writes them
 * (read back by getfattr from a scratch file): the oracle of the ACL conversion.
 */
export async function expectedXattrs(entry: XfsXattrsEntry): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const a of entry.attrs) if (!(entry.incomplete ?? []).includes(a.name)) out.set(`${a.namespace}.${a.name}`, a.value.toString('hex'));
  if (entry.acl === undefined) return out;
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-acl-form-'));
  try {
    for (const [kind, text] of [['access', entry.acl.access], ['default', entry.acl.default]] as const) {
      if (text === undefined) continue;
      const target = path.join(scratch, kind);
      await fs.mkdir(target);
      await runTool('setfacl', [...(kind === 'default' ? ['-d'] : []), '--set', text, target]);
      const name = `system.posix_acl_${kind}`;
      const hex = /=0x([0-9a-f]+)$/m.exec(await runTool('getfattr', ['-n', name, '-e', 'hex', '--absolute-names', target]))?.[1];
      if (hex === undefined) throw new Error(`getfattr printed no ${name} for ${text}`);
      out.set(name, hex);
    }
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
  return out;
}

const FLAG = { user: '-u', trusted: '-r', security: '-s' } as const;
const TAGS: Record<string, number> = { user: 0x01, group: 0x04, mask: 0x10, other: 0x20 };

/**
 * An ACL (`setfacl` text, entries in the order Linux keeps them) as XFS stores it (struct
 * xfs_acl, big-endian): u32 count, then per entry u32 tag, u32 id (0xFFFFFFFF without one),
 * u16 perm, u16 pad, as the kernel's xfs_acl_to_disk writes it.
 */
function xfsAclBytes(text: string): Buffer {
  const entries = text.split(',');
  const out = Buffer.alloc(4 + 12 * entries.length);
  out.writeUInt32BE(entries.length, 0);
  entries.forEach((e, i) => {
    const [kind, id, perms] = e.split(':') as [string, string, string];
    const tag = (TAGS[kind] as number) * (id === '' ? 1 : 2); // ACL_USER = 2 × USER_OBJ, ACL_GROUP = 2 × GROUP_OBJ
    const at = 4 + i * 12;
    out.writeUInt32BE(tag, at);
    out.writeUInt32BE(id === '' ? 0xffffffff : Number(id), at + 4);
    out.writeUInt16BE((perms.includes('r') ? 4 : 0) | (perms.includes('w') ? 2 : 0) | (perms.includes('x') ? 1 : 0), at + 8);
  });
  return out;
}

/** Writes the protofile of the tree's files, directories and symlinks (contents in `src`). */
async function writeProto(src: string): Promise<string> {
  const lines = ['coffer', '0 0', 'd--755 0 0'];
  const open: string[] = [];
  for (const entry of XFS_XATTRS_TREE) {
    const parts = entry.path.split('/').slice(1);
    while (open.length > parts.length - 1 || open.some((p, i) => parts[i] !== p)) {
      open.pop();
      lines.push('$');
    }
    const name = parts[parts.length - 1] as string;
    const mode = (entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644)).toString(8);
    if (entry.type === 'directory') {
      lines.push(`${name} d--${mode} 0 0`);
      open.push(name);
    } else if (entry.type === 'symlink') {
      lines.push(`${name} l--777 0 0 shortform.txt`);
    } else {
      const content = path.join(src, `content-${lines.length}`);
      await fs.writeFile(content, `${entry.path}\n`);
      lines.push(`${name} ---${mode} 0 0 ${content}`);
    }
  }
  for (let i = 0; i <= open.length; i++) lines.push('$');
  const proto = path.join(src, 'proto');
  await fs.writeFile(proto, `${lines.join('\n')}\n`);
  return proto;
}

/** Writes each attribute's value where xfs_db says its placeholder lies, then the CRCs of what holds them. */
async function placeValues(handle: fs.FileHandle, image: string, entry: XfsXattrsEntry): Promise<void> {
  const fork = await xfsDbAttrs(image, entry.path);
  const holders = new Map<number, XfsDbHolder>();
  for (const want of allAttrs(entry)) {
    const got = fork.attrs.find((a) => a.namespace === want.namespace && a.name.equals(Buffer.from(want.name)));
    if (got === undefined || got.value.length !== want.value.length) throw new Error(`${entry.path}: xfs_db did not set ${want.namespace} ${want.name} of ${want.value.length} bytes`);
    let done = 0;
    for (const piece of got.pieces) {
      await handle.write(want.value, done, piece.length, piece.at);
      holders.set(piece.holder.at, piece.holder);
      done += piece.length;
    }
  }
  for (const holder of holders.values()) await fixCrc(handle, holder);
}

async function markIncomplete(handle: fs.FileHandle, image: string, entry: XfsXattrsEntry): Promise<void> {
  if (entry.incomplete === undefined) return;
  const fork = await xfsDbAttrs(image, entry.path);
  for (const name of entry.incomplete) {
    const flags = fork.attrs.find((a) => a.name.equals(Buffer.from(name)))?.flags;
    if (flags === undefined) throw new Error(`${entry.path}: ${name} is not a leaf entry`);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, flags.at);
    byte[0] = (byte[0] as number) | 0x80;
    await handle.write(byte, 0, 1, flags.at);
    await fixCrc(handle, flags.holder);
  }
}

/** Recomputes the little-endian CRC-32C of an inode or block (taken with its CRC field as zero). */
async function fixCrc(handle: fs.FileHandle, holder: XfsDbHolder): Promise<void> {
  const bytes = Buffer.alloc(holder.size);
  await handle.read(bytes, 0, holder.size, holder.at);
  bytes.fill(0, holder.crcAt, holder.crcAt + 4);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32c(bytes));
  await handle.write(crc, 0, 4, holder.at + holder.crcAt);
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32C (Castagnoli), as XFS v5 metadata uses it. Written here rather than imported from
 * fs/ (which testing may not import): the fixture's checksums must not come from the code
 * under test, and xfs_repair -n checks them.
 */
function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC32C_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
