/**
 * XFS extended attributes against xfs_db: an image whose attributes xfsprogs' own attribute
 * code laid out (testing/xfs-xattrs-image.ts: short-form in the inode, one leaf block, a node
 * tree of leaves, remote values of 5000 and 65536 bytes, an ACL of 304 entries in remote
 * blocks, an incomplete entry, an emptied fork, a symlink's labels) reads, path by path, as
 * xfs_db lists it, in its order; ACLs in the form the host's setfacl writes
 * (`system.posix_acl_*`, though XFS holds `trusted.SGI_ACL_*` in its own format). Damage to
 * attribute blocks, remote values, the node tree (a cycle) or an ACL is E_FS_CORRUPT naming
 * the inode, and the content still reads.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { PatchedDevice } from '../../blockdev/patched-device.test-support.js';
import { RawImage } from '../../disk/index.js';
import { buildXattrsXfsImage, expectedXattrs, requireTools, xfsDbAttrs, xfsFragmentedImage, XFS_XATTRS_TREE, type XfsDbAttrFork } from '../../testing/index.js';
import { resolvePath, type Filesystem } from '../index.js';
import { crc32c } from './crc32c.js';
import { xfsDriver } from './index.js';

let image: string;

before(async () => {
  await requireTools('mkfs.xfs', 'xfs_repair', 'xfs_db', 'setfacl', 'getfattr');
  image = await buildXattrsXfsImage();
});

/** A real image with some bytes replaced in memory (the image file is never written). */
class XfsPatchedDevice extends PatchedDevice {
  /** Puts `bytes` at `at`, then (with `crc`) recomputes the CRC of the structure holding them, as a guest's kernel would have. */
  async patch(at: number, bytes: Uint8Array, crc?: { at: number; size: number; crcAt: number }): Promise<void> {
    bytes.forEach((b, i) => this.patches.set(at + i, b));
    if (crc === undefined) return;
    const block = Uint8Array.from(await this.read(crc.at, crc.size));
    block.fill(0, crc.crcAt, crc.crcAt + 4);
    const sum = crc32c(block);
    for (let i = 0; i < 4; i++) this.patches.set(crc.at + crc.crcAt + i, (sum >>> (8 * i)) & 0xff);
  }
}

async function withFs<T>(body: (fs: Filesystem, device: XfsPatchedDevice) => Promise<T>, from = image): Promise<T> {
  const raw = await RawImage.open(from);
  try {
    const device = new XfsPatchedDevice(raw);
    return await body(await xfsDriver.open(device), device);
  } finally {
    await raw.close();
  }
}

async function xattrsOf(fs: Filesystem, path: string): Promise<[string, string][]> {
  assert.ok(fs.xattrs, 'xfs reads extended attributes');
  const { node } = await resolvePath(fs, path);
  return (await fs.xattrs(node)).map((x) => [x.name, Buffer.from(x.value).toString('hex')]);
}

const ACL_NAMES: Record<string, string> = { SGI_ACL_FILE: 'system.posix_acl_access', SGI_ACL_DEFAULT: 'system.posix_acl_default' };

/** The names xfs_db lists for a fork, in its order, as Linux names them (incomplete entries left out). */
function linuxNames(fork: XfsDbAttrFork): string[] {
  return fork.attrs.filter((a) => !a.incomplete).map((a) => {
    const name = a.name.toString('latin1');
    return a.namespace === 'trusted' && ACL_NAMES[name] !== undefined ? ACL_NAMES[name] : `${a.namespace}.${name}`;
  });
}

test('every path has the attributes xfs_db lists, in its order, with its values; ACLs as setfacl writes them', async () => {
  const forms = new Set<string>();
  await withFs(async (fs) => {
    for (const entry of XFS_XATTRS_TREE) {
      const fork = await xfsDbAttrs(image, entry.path);
      forms.add(fork.form);
      const expected = await expectedXattrs(entry);
      const got = await xattrsOf(fs, entry.path);
      assert.deepEqual(new Map(got), expected, `${entry.path}: names and values`);
      // xfs_db lists a node tree's leaves in block order, the reader in hash order.
      const order = (names: string[]): string[] => (fork.form === 'node' ? [...names].sort() : names);
      assert.deepEqual(order(got.map(([name]) => name)), order(linuxNames(fork)), `${entry.path}: the names xfs_db lists`);
      for (const a of fork.attrs.filter((x) => !x.incomplete && !(x.namespace === 'trusted' && ACL_NAMES[x.name.toString('latin1')] !== undefined))) {
        assert.equal(expected.get(`${a.namespace}.${a.name.toString('latin1')}`), a.value.toString('hex'), `${entry.path}: xfs_db reads the value of ${a.name.toString('latin1')}`);
      }
    }
  });
  assert.deepEqual([...forms].sort(), ['leaf', 'node', 'none', 'shortform'], 'every form of attribute fork is read');
  const remote = await xfsDbAttrs(image, '/remote.txt');
  assert.ok(remote.attrs.filter((a) => a.valueBlock !== undefined).length >= 3, 'values and an ACL in remote blocks');
  assert.ok((await xfsDbAttrs(image, '/leaf.txt')).attrs.some((a) => a.incomplete), 'an incomplete entry, left out');
  assert.ok((await xfsDbAttrs(image, '/node.txt')).leafBlocks.length >= 3, 'a node tree over several leaves');
});

test('an attribute the Linux kernel wrote (the fragmented image, made on a loop mount) reads as xfs_db lists it', async () => {
  const fragmented = await xfsFragmentedImage();
  const fork = await xfsDbAttrs(fragmented, '/btree.bin');
  assert.equal(fork.form, 'shortform');
  const got = await withFs((fs) => xattrsOf(fs, '/btree.bin'), fragmented);
  assert.deepEqual(got, fork.attrs.map((a) => [`${a.namespace}.${a.name.toString('latin1')}`, a.value.toString('hex')]));
  assert.deepEqual(got, [['user.coffer', Buffer.from('an attribute that shrinks the data fork').toString('hex')]]);
});

/** Each damage, on its own, and what the error must say (the inode named: `inode N: …`). */
const DAMAGES: { what: string; path: string; damage: (device: XfsPatchedDevice, fork: XfsDbAttrFork) => Promise<void>; message: RegExp }[] = [
  {
    what: 'a leaf block with a bad CRC',
    path: '/leaf.txt',
    damage: (d, fork) => d.flip((fork.blocks.get(0) as number) + 200),
    message: /attribute block 0: checksum mismatch/,
  },
  {
    what: 'a remote value block with a bad CRC',
    path: '/remote.txt',
    damage: (d, fork) => {
      const piece = fork.attrs.find((a) => a.name.toString() === 'huge')?.pieces[3];
      assert.ok(piece);
      return d.flip(piece.at + 10);
    },
    message: /attribute block \d+: checksum mismatch/,
  },
  {
    what: 'remote value blocks out of order (CRCs valid)',
    path: '/remote.txt',
    damage: (d, fork) => {
      const piece = fork.attrs.find((a) => a.name.toString() === 'huge')?.pieces[2];
      assert.ok(piece);
      return d.patch(piece.holder.at + 4, Uint8Array.of(0, 0, 0, 0), piece.holder); // rm_offset 0: the first block again
    },
    message: /attribute block \d+: holds bytes 0\+4040 of a value, not 8080\+4040/,
  },
  {
    what: 'a node whose child is the node itself (a cycle; CRC valid)',
    path: '/node.txt',
    damage: (d, fork) => {
      const root = fork.blocks.get(0) as number;
      return d.patch(root + 64 + 4, Uint8Array.of(0, 0, 0, 0), { at: root, size: 4096, crcAt: 12 });
    },
    message: /attribute block 0 is reached twice/,
  },
  {
    what: 'an ACL entry with an unknown tag (CRC valid)',
    path: '/shortform.txt',
    damage: (d, fork) => {
      const acl = fork.attrs.find((a) => a.name.toString() === 'SGI_ACL_FILE')?.pieces[0];
      assert.ok(acl);
      return d.patch(acl.at + 4 + 12 + 3, Uint8Array.of(0x40), acl.holder); // the second entry's tag: 0x40
    },
    message: /trusted\.SGI_ACL_FILE: ACL entry 1 has unknown tag 0x40/,
  },
  {
    what: 'a short-form list longer than its fork (CRC valid)',
    path: '/link',
    damage: async (d, fork) => {
      const first = fork.attrs[0]?.pieces[0];
      assert.ok(first);
      const header = first.at - 3 - (fork.attrs[0]?.name.length ?? 0) - 4;
      await d.patch(header, Uint8Array.of(0x7f, 0xff), first.holder);
    },
    message: /short-form attributes: 32767 bytes in a fork of \d+/,
  },
];

for (const { what, path, damage, message } of DAMAGES) {
  test(`${what}: E_FS_CORRUPT naming the inode; the content still reads`, async () => {
    const fork = await xfsDbAttrs(image, path);
    await withFs(async (fs, device) => {
      await damage(device, fork);
      const { node } = await resolvePath(fs, path);
      await assert.rejects(() => (fs.xattrs as NonNullable<Filesystem['xattrs']>)(node), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'E_FS_CORRUPT', error.message);
        assert.match(error.message, new RegExp(`^xfs: inode ${fork.ino}: `));
        assert.match(error.message, message);
        return true;
      });
      if (node.type === 'file') assert.equal(Buffer.from(await fs.read(node, 0, 100)).toString(), `${path}\n`);
      else assert.equal(await fs.readlink(node), 'shortform.txt');
    });
  });
}
