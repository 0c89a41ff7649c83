/**
 * NTFS streams and DOS attributes as extended attributes, on the checked-in volume that
 * ntfs-3g wrote through a FUSE mount (src/testing/fixtures/make-ntfs-streams.sh): every named
 * stream — resident, non-resident, LZNT1-compressed, sparse, empty, 64 KiB, non-ASCII name,
 * forty in extension records, on a folder — is `user.NAME` with the bytes `ntfscat -a 0x80 -n
 * NAME` reads; the streams `ntfsinfo` lists are the node's streams; the one byte over 64 KiB and
 * ntfs-3g's store of a Linux attribute are left out with their reason; `system.ntfs_attrib_be`
 * is the $STANDARD_INFORMATION flags `ntfsinfo` prints, as ntfs-3g gives them. Damaged
 * streams are E_FS_CORRUPT from `xattrs` while the file's content still reads.
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { RawImage } from '../../disk/index.js';
import { damageNtfsStream, ntfs3gAttrib, ntfsCat, ntfsInfo, NTFS_STREAMS_PATHS, ntfsStreamsImage, requireTools } from '../../testing/index.js';
import { resolvePath, type Filesystem, type FsNode } from '../index.js';
import { ntfsDriver } from './index.js';

let image: string;
let fs: Filesystem;
let work: string;
const nodes = new Map<string, FsNode>();

before(async () => {
  await requireTools('ntfscat', 'ntfsinfo');
  image = await ntfsStreamsImage();
  fs = await ntfsDriver.open(await RawImage.open(image));
  for (const entry of await fs.readdir(await fs.root())) {
    nodes.set(`/${entry.name}`, entry.node!);
    if (entry.node!.type === 'directory') for (const inner of await fs.readdir(entry.node!)) nodes.set(`/${entry.name}/${inner.name}`, inner.node!);
  }
  work = await fsp.mkdtemp(path.join(os.tmpdir(), 'coffer-ntfs-xattrs-'));
});
after(() => fsp.rm(work, { recursive: true, force: true }));

test('every stream is user.NAME with the bytes ntfscat reads, or left out with why; the DOS attributes are ntfsinfo\'s flags', async () => {
  assert.deepEqual([...nodes.keys()].sort(), [...NTFS_STREAMS_PATHS].sort());
  const seen = new Set<string>();
  for (const [p, node] of nodes) {
    const info = await ntfsInfo(image, p);
    assert.deepEqual(new Map((node.streams ?? []).map((s) => [s.name, s.size])), info.streams, `${p}: the streams ntfsinfo lists`);
    const xattrs = await fs.xattrs!(node);
    const byName = new Map(xattrs.map((x) => [x.name, x]));
    assert.equal(byName.size, xattrs.length, `${p}: each name once`);
    for (const s of node.streams ?? []) {
      seen.add(s.name);
      if (s.xattr === undefined) {
        assert.ok(s.notXattr !== undefined && !byName.has(`user.${s.name}`), `${p}: ${s.name} left out with a reason`);
        continue;
      }
      assert.equal(s.xattr, `user.${s.name}`);
      assert.ok(Buffer.from(byName.get(s.xattr)!.value).equals(await ntfsCat(image, p, s.name)), `${p}: ${s.name} is what ntfscat reads`);
      byName.delete(s.xattr);
    }
    const dos = byName.get('system.ntfs_attrib_be');
    assert.equal(Buffer.from(dos!.value).readUInt32BE(0), ntfs3gAttrib(info), `${p}: system.ntfs_attrib_be`);
    assert.equal(dos!.archiveOnly, true);
    byName.delete('system.ntfs_attrib_be');
    assert.deepEqual([...byName.keys()], [], `${p}: nothing else`);
  }
  for (const name of ['Zone.Identifier', 'note', 'small', 'thumb', 'max', 'big', 'empty', 'résumé ☃', 'log', 'holes', 'desktop', 's01', 's40', 'ntfs-3g.trusted.coffer']) assert.ok(seen.has(name), `the fixture has the stream ${name}`);
});

test('what each kind of stream gives, and the DOS attributes of a hidden, a normal file and folders', async () => {
  const sizes = nodes.get('/sizes.txt')!;
  const streams = new Map((sizes.streams ?? []).map((s) => [s.name, s]));
  assert.equal(streams.get('max')?.xattr, 'user.max');
  assert.deepEqual(streams.get('big'), { name: 'big', size: 65537, notXattr: 'larger than the 65536 bytes an extended attribute holds on Linux' });
  assert.match(nodes.get('/store.txt')!.streams![0]!.notXattr ?? '', /^ntfs-3g's store of the Linux attribute trusted\.coffer/);
  const values = new Map((await fs.xattrs!(sizes)).map((x) => [x.name, Buffer.from(x.value)]));
  assert.equal(values.get('user.max')?.length, 65536);
  assert.equal(values.get('user.empty')?.length, 0);
  assert.match(values.get('user.thumb')!.subarray(0, 20).toString(), /^line 0{14}/);
  const holes = Buffer.from((await fs.xattrs!(nodes.get('/sparse.bin')!))[0]!.value);
  assert.deepEqual([holes.length, holes.subarray(0, 4).toString(), holes.subarray(40960).toString(), holes.subarray(4, 40960).every((b) => b === 0)], [40964, 'head', 'tail', true]);
  const log = (await fs.xattrs!(nodes.get('/compressed/packed.txt')!))[0]!;
  assert.deepEqual([log.name, log.value.length], ['user.log', 50000]);
  assert.equal((await fs.xattrs!(nodes.get('/many.txt')!)).filter((x) => x.name.startsWith('user.s')).length, 40);
  const dos = async (p: string): Promise<number> => Buffer.from((await fs.xattrs!(nodes.get(p)!)).find((x) => x.name === 'system.ntfs_attrib_be')!.value).readUInt32BE(0);
  assert.deepEqual([await dos('/hidden.txt'), await dos('/normal.txt'), await dos('/folder'), await dos('/compressed')], [0x27, 0x80, 0x30, 0x810]);
});

test('a damaged stream is E_FS_CORRUPT from xattrs, naming it; the file still reads', async () => {
  const cases: [string, string, (view: DataView, at: number) => void, RegExp][] = [
    // 60000 bytes claimed in the 5 clusters of a 20000-byte stream
    ['thumb', '/sizes.txt', (view, at) => view.setBigUint64(at + 0x30, 60000n, true), /MFT record \d+: stream thumb: 60000 bytes of data but 5 clusters mapped/],
    // its first run moved past the end of the volume
    ['holes', '/sparse.bin', (view, at) => {
      const pairs = at + view.getUint16(at + 0x20, true);
      const header = view.getUint8(pairs);
      const lengthSize = header & 0x0f;
      const offsetSize = header >> 4;
      for (let i = 0; i < offsetSize; i++) view.setUint8(pairs + 1 + lengthSize + i, i === offsetSize - 1 ? 0x7f : 0xff);
    }, /MFT record \d+: stream holes: run at cluster \d+ \(\+1\) outside the volume/],
  ];
  for (const [stream, p, change, message] of cases) {
    const copy = path.join(work, `${stream}.img`);
    await damageNtfsStream(image, stream, copy, change);
    const broken = await ntfsDriver.open(await RawImage.open(copy));
    const node = (await resolvePath(broken, p)).node;
    await assert.rejects(broken.xattrs!(node), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'E_FS_CORRUPT', error.message);
      assert.match(error.message, message);
      return true;
    });
    assert.deepEqual(Buffer.from(await broken.read(node, 0, node.size)), await ntfsCat(image, p), `${p}: its content`);
  }
});
