import { fsCorrupt } from '../fs-errors.js';

/**
 * POSIX ACLs as XFS stores them: the values of attributes `SGI_ACL_FILE` (the access ACL)
 * and `SGI_ACL_DEFAULT` (a directory's default ACL) in the ROOT (`trusted.`) namespace,
 * big-endian (struct xfs_acl, xfs_format.h / xfs_acl.h):
 *
 * | off | size | field    | meaning                                                    |
 * | 0   | 4    | acl_cnt  | number of entries                                          |
 * | 4   | 12·n | entries  | ae_tag (4), ae_id (4), ae_perm (2), ae_pad (2) each        |
 *
 * The value is exactly 4 + 12 · acl_cnt bytes, with at most (65536 - 4) / 12 = 5461
 * entries on a v5 filesystem (the kernel rejects anything else as corruption). Tags are
 * Linux's: ACL_USER_OBJ 1, ACL_USER 2, ACL_GROUP_OBJ 4, ACL_GROUP 8, ACL_MASK 0x10,
 * ACL_OTHER 0x20; ae_id counts only for ACL_USER and ACL_GROUP (the kernel writes
 * 0xFFFFFFFF in the others and ignores what it reads there).
 *
 * Linux's getxattr/setxattr speak `system.posix_acl_access`/`_default` in another form
 * (posix_acl_xattr_header, little-endian): a_version 2, then 8-byte entries e_tag (2),
 * e_perm (2), e_id (4), e_id 0xFFFFFFFF (ACL_UNDEFINED_ID) for the tags without one. It is
 * what ext-acl.ts gives for ext4. {@link xfsAclToXattr} converts the first to the second.
 */
const HEADER_SIZE = 4;
const ENTRY_SIZE = 12;
const ENTRY = { tag: 0, id: 4, perm: 8 } as const;
/** XFS_ACL_MAX_ENTRIES on a v5 filesystem: as many as fit in the largest attribute value. */
export const XFS_ACL_MAX_ENTRIES = Math.floor((65536 - HEADER_SIZE) / ENTRY_SIZE);
const XATTR_ACL_VERSION = 2;
const XATTR_ENTRY_SIZE = 8;
const TAG = { USER_OBJ: 0x01, USER: 0x02, GROUP_OBJ: 0x04, GROUP: 0x08, MASK: 0x10, OTHER: 0x20 } as const;
const KNOWN_TAGS: ReadonlySet<number> = new Set(Object.values(TAG));
const UNDEFINED_ID = 0xffffffff;

/** The attribute names (ROOT namespace) XFS keeps ACLs under, and the Linux names they stand for. */
export const XFS_ACL_NAMES: ReadonlyMap<string, string> = new Map([
  ['SGI_ACL_FILE', 'system.posix_acl_access'],
  ['SGI_ACL_DEFAULT', 'system.posix_acl_default'],
]);

/**
 * The Linux xattr form of an XFS ACL value; throws `E_FS_CORRUPT` naming `where` for a size
 * that does not match acl_cnt, too many entries or an unknown tag.
 */
export function xfsAclToXattr(value: Uint8Array, where: string): Uint8Array {
  const v = new DataView(value.buffer, value.byteOffset, value.length);
  if (value.length < HEADER_SIZE) throw fsCorrupt('xfs', `${where}: an ACL of ${value.length} bytes`, { object: where });
  const count = v.getUint32(0);
  if (count > XFS_ACL_MAX_ENTRIES || value.length !== HEADER_SIZE + count * ENTRY_SIZE) {
    throw fsCorrupt('xfs', `${where}: an ACL of ${value.length} bytes claims ${count} entries`, { object: where });
  }
  const out = new Uint8Array(HEADER_SIZE + count * XATTR_ENTRY_SIZE);
  const o = new DataView(out.buffer);
  o.setUint32(0, XATTR_ACL_VERSION, true);
  for (let i = 0; i < count; i++) {
    const at = HEADER_SIZE + i * ENTRY_SIZE;
    const tag = v.getUint32(at + ENTRY.tag);
    if (!KNOWN_TAGS.has(tag)) throw fsCorrupt('xfs', `${where}: ACL entry ${i} has unknown tag 0x${tag.toString(16)}`, { object: where });
    const to = HEADER_SIZE + i * XATTR_ENTRY_SIZE;
    o.setUint16(to, tag, true);
    o.setUint16(to + 2, v.getUint16(at + ENTRY.perm), true);
    o.setUint32(to + 4, tag === TAG.USER || tag === TAG.GROUP ? v.getUint32(at + ENTRY.id) : UNDEFINED_ID, true);
  }
  return out;
}
