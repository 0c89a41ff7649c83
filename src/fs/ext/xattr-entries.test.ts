/**
 * The attribute parsers on crafted bytes: a hostile disk's entries that are cut off, run past
 * their area or overlap the entry table are `E_FS_CORRUPT` naming the inode, never a crash,
 * a hang or a read outside the area; ext4 ACLs become Linux's xattr form.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ext4AclToXattr } from './ext-acl.js';
import { parseInodeXattrs, parseXattrBlock, XATTR_BLOCK_HEADER_SIZE, XATTR_MAGIC, xattrBlockChecksum } from './xattr-entries.js';

interface Entry { index: number; name: string; offs: number; size: number; inum?: number }

/** An area: h_magic (in-inode) or a 32-byte block header, entries, an end marker, then `values` at their offsets. */
function area(kind: 'inode' | 'block', entries: Entry[], values: [number, string][], length: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(length, 4096)); // cut to `length` at the end: entries may run past it
  const v = new DataView(bytes.buffer);
  v.setUint32(0, XATTR_MAGIC, true);
  if (kind === 'block') v.setUint32(8, 1, true);
  const base = kind === 'inode' ? 4 : 0; // in-inode offsets count from the first entry
  let at = kind === 'inode' ? 4 : XATTR_BLOCK_HEADER_SIZE;
  for (const e of entries) {
    bytes[at] = e.name.length;
    bytes[at + 1] = e.index;
    v.setUint16(at + 2, e.offs, true);
    v.setUint32(at + 4, e.inum ?? 0, true);
    v.setUint32(at + 8, e.size, true);
    bytes.set(Buffer.from(e.name, 'latin1'), at + 16);
    at += (16 + e.name.length + 3) & ~3;
  }
  for (const [offs, text] of values) bytes.set(Buffer.from(text, 'latin1'), base + offs);
  return bytes.slice(0, length);
}

test('entries of an inode area and of a block read with their prefixes and values', () => {
  const inode = parseInodeXattrs(area('inode', [{ index: 1, name: 'colour', offs: 92, size: 4 }, { index: 7, name: 'data', offs: 0, size: 0 }], [[92, 'blue']], 100), 'inode 12');
  assert.deepEqual(inode.map((x) => [x.name, Buffer.from(x.value ?? []).toString()]), [['user.colour', 'blue'], ['system.data', '']]);
  const block = parseXattrBlock(area('block', [{ index: 4, name: 'k', offs: 1000, size: 2 }, { index: 3, name: '', offs: 1010, size: 4 }, { index: 9, name: 'c', offs: 1020, size: 1 }], [[1000, 'tv'], [1010, 'acl!'], [1020, 'z']], 1024), 40, 'inode 12');
  assert.deepEqual(block.map((x) => x.name), ['trusted.k', 'system.posix_acl_default', undefined]);
  assert.deepEqual(parseInodeXattrs(new Uint8Array(32), 'inode 12'), [], 'no h_magic: no attributes');
  assert.deepEqual(parseInodeXattrs(new Uint8Array(0), 'inode 12'), [], 'no room at all');
});

test('damaged areas are E_FS_CORRUPT naming the inode and the entry', () => {
  const cases: { what: string; parse: () => unknown; message: RegExp }[] = [
    { what: 'an entry cut off by the end', parse: () => parseInodeXattrs(area('inode', [{ index: 1, name: 'ab', offs: 0, size: 0 }], [], 12), 'inode 12'), message: /inode 12: in-inode extended attributes: entry at byte 0 is cut off/ },
    { what: 'a name past the end', parse: () => parseInodeXattrs(area('inode', [{ index: 1, name: 'abcdefgh', offs: 0, size: 0 }], [], 24), 'inode 12'), message: /inode 12: .*name of the entry at byte 0 runs past the end/ },
    { what: 'a value past the end', parse: () => parseInodeXattrs(area('inode', [{ index: 1, name: 'a', offs: 90, size: 20 }], [], 100), 'inode 12'), message: /inode 12: .*value of the entry at byte 0 \(20 bytes at byte 90\)/ },
    { what: 'a value overlapping the entry table', parse: () => parseXattrBlock(area('block', [{ index: 1, name: 'a', offs: 32, size: 8 }], [], 1024), 7, 'inode 13'), message: /inode 13: extended attribute block 7: the value of the entry at byte 32/ },
    { what: 'a value size far beyond the block', parse: () => parseXattrBlock(area('block', [{ index: 1, name: 'a', offs: 1000, size: 0xffffffff }], [], 1024), 7, 'inode 13'), message: /inode 13: .* lies outside the values/ },
    { what: 'an ea_inode value beyond 64 KiB', parse: () => parseXattrBlock(area('block', [{ index: 1, name: 'a', offs: 0, size: 70000, inum: 20 }], [], 1024), 7, 'inode 13'), message: /claims a 70000-byte value/ },
    { what: 'a block without the magic', parse: () => parseXattrBlock(new Uint8Array(1024), 7, 'inode 13'), message: /inode 13: extended attribute block 7: bad magic 0x0/ },
    { what: 'a block of two', parse: () => { const b = area('block', [], [], 1024); new DataView(b.buffer).setUint32(8, 2, true); return parseXattrBlock(b, 7, 'inode 13'); }, message: /h_blocks is 2/ },
    { what: 'a block whose checksum does not match', parse: () => parseXattrBlock(area('block', [], [], 1024), 7, 'inode 13', 0x1234), message: /inode 13: extended attribute block 7: checksum 0x0 should be/ },
    { what: 'a cut ACL entry', parse: () => ext4AclToXattr(Uint8Array.from([1, 0, 0, 0, 2, 0, 6, 0, 0xd2, 4]), 'inode 12: system.posix_acl_access'), message: /inode 12: system.posix_acl_access: ACL entry at byte 4 is cut off/ },
    { what: 'an ACL of another version', parse: () => ext4AclToXattr(Uint8Array.from([2, 0, 0, 0]), 'inode 12: x'), message: /not an ext4 ACL \(version 2\)/ },
    { what: 'an unknown ACL tag', parse: () => ext4AclToXattr(Uint8Array.from([1, 0, 0, 0, 0x40, 0, 6, 0]), 'inode 12: x'), message: /unknown tag 0x40/ },
  ];
  for (const c of cases) {
    assert.throws(c.parse, (error: Error & { code?: string }) => {
      assert.equal(error.code, 'E_FS_CORRUPT', c.what);
      assert.match(error.message, c.message, c.what);
      return true;
    }, c.what);
  }
});

test('a block with the right checksum reads', () => {
  const block = area('block', [{ index: 1, name: 'a', offs: 1020, size: 1 }], [[1020, 'v']], 1024);
  new DataView(block.buffer).setUint32(16, xattrBlockChecksum(block, 7, 0x1234), true);
  assert.equal(parseXattrBlock(block, 7, 'inode 13', 0x1234)[0]?.name, 'user.a');
});

test('an ext4 ACL becomes the xattr form setxattr takes (ids 0xFFFFFFFF on the short entries)', () => {
  // user::rw- user:1234:rw- group::r-- mask::rw- other::r--, as debugfs shows it on disk.
  const disk = Buffer.from('01000000010006000200060 0d2040000040004001000060020000400'.replace(/ /g, ''), 'hex');
  assert.equal(Buffer.from(ext4AclToXattr(disk, 'inode 12')).toString('hex'),
    '0200000001000600ffffffff02000600d204000004000400ffffffff10000600ffffffff20000400ffffffff');
});
