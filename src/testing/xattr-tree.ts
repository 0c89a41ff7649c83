/**
 * A small tree whose entries carry extended attributes and POSIX ACLs, and an ext4 image made
 * from it by `mke2fs -d` (which copies them, ACLs converted to ext4's own format). Needs a
 * folder on a filesystem with xattrs, and root for `trusted.*`/`security.*`.
 */
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { cachedFixture, fixtureDir, runTool } from './disks.js';

/** One 300-byte value per `user.bigN` attribute of `big-attrs.txt`: six do not fit the inode, so they fill the attribute block. */
export const XATTR_BIG_VALUE = 'x'.repeat(300);

/**
 * Writes the tree into `dir` (existing, empty):
 * - `colour.txt`: `user.colour=blue`, an ACL `u:1234:rw`, `trusted.secret`, `security.label`,
 *   and `user.caf\xe9` (a name that is not UTF-8) with a value holding bytes 00 and FF;
 * - `shared/`: an access ACL `g:55:r` and a default ACL `u:1234:rx`, and `shared/inner.txt`
 *   created below it (so with the ACL inherited from it); `shared/plain.txt` made without it
 *   (its ACL removed), which must stay without one;
 * - `big-attrs.txt`: `user.big1` … `user.big6` (300 bytes each, in the attribute block);
 * - `plain.txt`: none;
 * - `link` → `colour.txt`, a symlink with `trusted.link=1` (on the link itself).
 */
export async function writeXattrTree(dir: string): Promise<void> {
  const at = (name: string): string => path.join(dir, name);
  const sh = (script: string, ...args: string[]): Promise<string> => runTool('sh', ['-c', script, 'sh', ...args]);
  await fs.writeFile(at('colour.txt'), 'blue\n');
  await sh('setfattr -n user.colour -v blue "$1" && setfacl -m u:1234:rw "$1" && setfattr -n trusted.secret -v t1 "$1" && setfattr -n security.label -v s1 "$1"', at('colour.txt'));
  await sh(`setfattr -n "$(printf 'user.caf\\351')" -v 0x00ff41 "$1"`, at('colour.txt'));
  await fs.mkdir(at('shared'));
  await sh('setfacl -m g:55:r "$1" && setfacl -d -m u:1234:rx "$1"', at('shared'));
  await fs.writeFile(at('shared/inner.txt'), 'inherits\n');
  await fs.writeFile(at('shared/plain.txt'), 'no acl\n');
  await sh('setfacl -b "$1"', at('shared/plain.txt'));
  await fs.writeFile(at('big-attrs.txt'), 'big\n');
  for (let i = 1; i <= 6; i++) await sh(`setfattr -n user.big${i} -v ${XATTR_BIG_VALUE} "$1"`, at('big-attrs.txt'));
  await fs.writeFile(at('plain.txt'), 'plain\n');
  await fs.symlink('colour.txt', at('link'));
  await sh('setfattr -h -n trusted.link -v 1 "$1"', at('link'));
}

/**
 * An 8 MiB ext4 (4 KiB blocks, metadata_csum) made by `mke2fs -d` from {@link writeXattrTree},
 * then `system.richacl=xyz` added to `plain.txt` by debugfs: an attribute Linux refuses to
 * set (it has no rich ACLs), for the "not restored" path.
 */
export async function buildXattrsExtImage(): Promise<string> {
  return cachedFixture('ext-xattrs', { kind: 'ext-xattrs', version: 1 }, async (tmp) => {
    const src = await fs.mkdtemp(path.join(await fixtureDir(), '.ext-xattrs-src-'));
    try {
      await writeXattrTree(src);
      await fs.writeFile(tmp, '');
      await fs.truncate(tmp, 8 * 1024 * 1024);
      await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-U', '6f1d3c1e-7a51-4d0c-9a55-1f0c2b3d4e5f', '-L', 'coffer-xattrs', '-E', 'nodiscard', '-d', src, tmp]);
      await runTool('debugfs', ['-w', '-R', 'ea_set /plain.txt system.richacl xyz', tmp]);
    } finally {
      await fs.rm(src, { recursive: true, force: true });
    }
  });
}
