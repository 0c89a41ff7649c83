import { fsCorrupt } from '../fs-errors.js';

/**
 * POSIX ACLs as ext2/3/4 store them (the values of attributes `system.posix_acl_access` and
 * `system.posix_acl_default`, name indexes 2 and 3), little-endian:
 *
 * | off | size | field     | meaning                                     |
 * | 0   | 4    | a_version | 1                                           |
 * | 4   | …    | entries   | short or long, in the order the ACL has them|
 *
 * Entry: e_tag (2), e_perm (2), then e_id (4) only for ACL_USER (2) and ACL_GROUP (8); the
 * other tags (ACL_USER_OBJ 1, ACL_GROUP_OBJ 4, ACL_MASK 0x10, ACL_OTHER 0x20) have the short
 * 4-byte form.
 *
 * Linux's getxattr/setxattr speak another format (posix_acl_xattr_header): a_version 2,
 * then 8-byte entries e_tag (2), e_perm (2), e_id (4), e_id 0xFFFFFFFF (ACL_UNDEFINED_ID)
 * for the tags without one. {@link ext4AclToXattr} converts the first to the second.
 */
const EXT4_ACL_VERSION = 1;
const XATTR_ACL_VERSION = 2;
const TAG = { USER_OBJ: 0x01, USER: 0x02, GROUP_OBJ: 0x04, GROUP: 0x08, MASK: 0x10, OTHER: 0x20 } as const;
const KNOWN_TAGS: ReadonlySet<number> = new Set(Object.values(TAG));
const UNDEFINED_ID = 0xffffffff;
const XATTR_ENTRY_SIZE = 8;

/** The Linux xattr form of an ext4 ACL value; throws `E_FS_CORRUPT` naming `where` for a bad version, tag or a cut entry. */
export function ext4AclToXattr(value: Uint8Array, where: string): Uint8Array {
  const v = new DataView(value.buffer, value.byteOffset, value.length);
  if (value.length < 4 || v.getUint32(0, true) !== EXT4_ACL_VERSION) throw fsCorrupt('ext', `${where}: not an ext4 ACL (version ${value.length < 4 ? 'missing' : v.getUint32(0, true)})`, { object: where });
  // Each entry takes at least 4 bytes of the value: the output is at most twice its size.
  const out = new Uint8Array(4 + 2 * (value.length - 4));
  const o = new DataView(out.buffer);
  o.setUint32(0, XATTR_ACL_VERSION, true);
  let length = 4;
  for (let at = 4; at < value.length;) {
    if (at + 4 > value.length) throw fsCorrupt('ext', `${where}: ACL entry at byte ${at} is cut off`, { object: where });
    const tag = v.getUint16(at, true);
    if (!KNOWN_TAGS.has(tag)) throw fsCorrupt('ext', `${where}: ACL entry at byte ${at} has unknown tag 0x${tag.toString(16)}`, { object: where });
    const long = tag === TAG.USER || tag === TAG.GROUP;
    if (long && at + 8 > value.length) throw fsCorrupt('ext', `${where}: ACL entry at byte ${at} is cut off`, { object: where });
    o.setUint16(length, tag, true);
    o.setUint16(length + 2, v.getUint16(at + 2, true), true);
    o.setUint32(length + 4, long ? v.getUint32(at + 4, true) : UNDEFINED_ID, true);
    length += XATTR_ENTRY_SIZE;
    at += long ? 8 : 4;
  }
  return out.subarray(0, length);
}
