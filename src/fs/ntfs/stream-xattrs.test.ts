import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FsNodeType } from '../filesystem.js';
import { dosAttributesXattr, readStreamXattrs, streamAsXattr } from './stream-xattrs.js';

test('a named stream is user.NAME, or left out with the reason, as ntfs-3g lists them', () => {
  const table: [string, number, FsNodeType, string | RegExp][] = [
    ['Zone.Identifier', 26, 'file', 'user.Zone.Identifier'],
    ['résumé ☃', 3, 'directory', 'user.résumé ☃'],
    ['empty', 0, 'file', 'user.empty'],
    ['max', 65536, 'file', 'user.max'],
    ['big', 65537, 'file', /^larger than the 65536 bytes an extended attribute holds on Linux$/],
    ['note', 4, 'symlink', /^a link carries no user\.\* attributes on Linux$/],
    ['ntfs-3g.trusted.x', 3, 'file', /^ntfs-3g's store of the Linux attribute trusted\.x/],
    ['ntfs-3g.', 3, 'file', 'user.ntfs-3g.'], // ntfs-3g hides only names longer than its prefix
    ['a\0b', 3, 'file', /NUL/],
    ['x'.repeat(250), 3, 'file', 'user.' + 'x'.repeat(250)],
    ['x'.repeat(251), 3, 'file', /^its attribute name would be 256 bytes, more than the 255 Linux takes$/],
    ['é'.repeat(126), 3, 'file', /257 bytes/], // 252 bytes of UTF-8 for 126 UTF-16 units
  ];
  for (const [name, size, type, want] of table) {
    const got = streamAsXattr({ name, size }, type);
    assert.equal(got.name, name);
    assert.equal(got.size, size);
    if (typeof want === 'string') assert.deepEqual([got.xattr, got.notXattr], [want, undefined], name);
    else {
      assert.equal(got.xattr, undefined, name);
      assert.match(got.notXattr ?? '', want, name);
    }
  }
});

test('the DOS attributes are system.ntfs_attrib_be, archive-only, as ntfs_get_ntfs_attrib computes them', () => {
  const table: [number, boolean, number][] = [
    [0x20, false, 0x20],
    [0x27, false, 0x27],
    [0x00, false, 0x80], // NORMAL when no flag is left
    [0x10, false, 0x80], // DIRECTORY cleared on a file's record
    [0x20, true, 0x30], // and set on a folder's
    [0x820, false, 0x820],
    [0x80000000, false, 0x80000000],
  ];
  for (const [flags, directory, want] of table) {
    const x = dosAttributesXattr(flags, directory);
    assert.equal(x.name, 'system.ntfs_attrib_be');
    assert.equal(x.archiveOnly, true);
    assert.equal(Buffer.from(x.value).readUInt32BE(0), want, `0x${flags.toString(16)} ${directory}`);
    assert.equal(x.value.length, 4);
  }
});

test('stream attributes are read whole and bounded in count and bytes', async () => {
  const streams = [streamAsXattr({ name: 'a', size: 3 }, 'file'), streamAsXattr({ name: 'big', size: 70000 }, 'file'), streamAsXattr({ name: 'b', size: 2 }, 'file')];
  const reads: string[] = [];
  const read = async (name: string, size: number): Promise<Uint8Array> => {
    reads.push(name);
    return new Uint8Array(size).fill(name.charCodeAt(0));
  };
  const got = await readStreamXattrs(streams, read, { what: 'MFT record 64' });
  assert.deepEqual(got.map((x) => [x.name, Buffer.from(x.value).toString()]), [['user.a', 'aaa'], ['user.b', 'bb']]);
  assert.deepEqual(reads, ['a', 'b'], 'a stream left out is never read');
  await assert.rejects(readStreamXattrs(streams, read, { what: 'MFT record 64', limits: { count: 1, totalBytes: 100 } }), { code: 'E_FS_UNSUPPORTED', message: /MFT record 64: more than 1 alternate data streams/ });
  await assert.rejects(readStreamXattrs(streams, read, { what: 'MFT record 64', limits: { count: 10, totalBytes: 4 } }), { code: 'E_FS_UNSUPPORTED', message: /more than 4 bytes/ });
  await assert.rejects(readStreamXattrs(streams, async () => new Uint8Array(1), { what: 'MFT record 64' }), { code: 'E_FS_CORRUPT', message: /stream a of 3 bytes reads as 1/ });
});
