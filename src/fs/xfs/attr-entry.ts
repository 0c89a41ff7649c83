import { decodeName } from '../../names/index.js';
import { fsCorrupt } from '../fs-errors.js';

/**
 * One extended attribute as an XFS attribute fork lists it (short-form entry or leaf entry),
 * its value still where it lies. The flags byte, the same in both (xfs_da_format.h):
 *
 * | bit  | flag       | meaning                                                         |
 * | 0x01 | LOCAL      | (leaf entries) the value is in the leaf, else in remote blocks  |
 * | 0x02 | ROOT       | namespace `trusted.`                                            |
 * | 0x04 | SECURE     | namespace `security.`                                           |
 * | 0x08 | PARENT     | a parent pointer (parent feature), not an attribute a user sees |
 * | 0x80 | INCOMPLETE | being created or removed when the system stopped: not listed    |
 *
 * Neither ROOT nor SECURE: namespace `user.`. POSIX ACLs are ROOT attributes with names of
 * their own (xfs-acl.ts). Names are 1 to 255 bytes, values at most 64 KiB.
 */
export interface RawAttr {
  flags: number;
  /** The name without its namespace (a view into the fork or block). */
  name: Uint8Array;
  /** The value, when stored with the name (a view). */
  value?: Uint8Array;
  /** A value stored in remote blocks: its first logical block in the attribute fork and its length. */
  remote?: { block: number; length: number };
}

export const ATTR_FLAG = { LOCAL: 0x01, ROOT: 0x02, SECURE: 0x04, PARENT: 0x08, INCOMPLETE: 0x80 } as const;

/** The largest value XFS holds (XFS_XATTR_SIZE_MAX, Linux's XATTR_SIZE_MAX). */
export const MAX_ATTR_VALUE = 65536;

/**
 * The name Linux gives an attribute (`user.`, `trusted.` or `security.` + its name, decoded
 * like entry names), or undefined for one it does not list (a parent pointer). Throws
 * `E_FS_CORRUPT` naming `where` for flags that claim two namespaces.
 */
export function attrFullName(entry: RawAttr, where: string): string | undefined {
  if ((entry.flags & ATTR_FLAG.PARENT) !== 0) return undefined;
  const namespace = entry.flags & (ATTR_FLAG.ROOT | ATTR_FLAG.SECURE);
  if (namespace === (ATTR_FLAG.ROOT | ATTR_FLAG.SECURE)) throw fsCorrupt('xfs', `${where}: an attribute is in two namespaces (flags 0x${entry.flags.toString(16)})`, { object: where });
  const prefix = namespace === ATTR_FLAG.ROOT ? 'trusted.' : namespace === ATTR_FLAG.SECURE ? 'security.' : 'user.';
  return prefix + decodeName(entry.name);
}
