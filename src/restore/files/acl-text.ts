/**
 * A POSIX ACL in Linux's xattr form (posix_acl_xattr_header: a_version 2 (u32), then 8-byte
 * entries e_tag (u16), e_perm (u16), e_id (u32), little-endian) as the long text form
 * acl_to_text writes and GNU tar stores in `SCHILY.acl.access`/`SCHILY.acl.default`: one entry
 * a line, `user::rw-`, `user:1234:rw-`, `group::r--`, `group:55:r--`, `mask::rw-`,
 * `other::r--`. Ids stay numbers: the guest's accounts are not the host's.
 * Undefined for a value that is not such an ACL (tar then keeps only the xattr form).
 */
export function aclXattrToText(value: Uint8Array): string | undefined {
  if (value.length < 4 || (value.length - 4) % 8 !== 0) return undefined;
  const v = new DataView(value.buffer, value.byteOffset, value.length);
  if (v.getUint32(0, true) !== 2) return undefined;
  const lines: string[] = [];
  for (let at = 4; at < value.length; at += 8) {
    const tag = TAGS.get(v.getUint16(at, true));
    if (tag === undefined) return undefined;
    const perm = v.getUint16(at + 2, true);
    const id = tag.withId ? String(v.getUint32(at + 4, true)) : '';
    lines.push(`${tag.name}:${id}:${perm & 4 ? 'r' : '-'}${perm & 2 ? 'w' : '-'}${perm & 1 ? 'x' : '-'}`);
  }
  return lines.map((line) => `${line}\n`).join('');
}

const TAGS: ReadonlyMap<number, { name: string; withId: boolean }> = new Map([
  [0x01, { name: 'user', withId: false }],
  [0x02, { name: 'user', withId: true }],
  [0x04, { name: 'group', withId: false }],
  [0x08, { name: 'group', withId: true }],
  [0x10, { name: 'mask', withId: false }],
  [0x20, { name: 'other', withId: false }],
]);
