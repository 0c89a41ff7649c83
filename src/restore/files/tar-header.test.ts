import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TAR_BLOCK, tarHeader, type TarEntry } from './tar-header.js';

const base: TarEntry = { path: Buffer.from('a'), type: 'file', mode: 0o644, uid: 1000, gid: 1000, mtimeMs: 1_600_000_000_000, size: 0 };

/** The blocks of a header: pax records (parsed, each length checked) and the ustar block's fields. */
function parse(bytes: Buffer): { records: [string, Buffer][]; name: Buffer; prefix: Buffer; linkname: Buffer; size: Buffer; typeflag: string; uname: string; gname: string } {
  const field = (block: Buffer, at: number, size: number): Buffer => {
    const raw = block.subarray(at, at + size);
    const end = raw.indexOf(0);
    return raw.subarray(0, end === -1 ? size : end);
  };
  const checksum = (block: Buffer): void => {
    let sum = 0;
    for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    assert.equal(Number.parseInt(field(block, 148, 8).toString('latin1'), 8), sum, 'checksum');
    assert.equal(block.subarray(257, 265).toString('latin1'), 'ustar\u000000');
  };
  let at = 0;
  const records: [string, Buffer][] = [];
  if (bytes[156] === 0x78) {
    checksum(bytes.subarray(0, TAR_BLOCK));
    const size = Number.parseInt(field(bytes, 124, 12).toString('latin1'), 8);
    let body = bytes.subarray(TAR_BLOCK, TAR_BLOCK + size);
    while (body.length > 0) {
      const space = body.indexOf(0x20);
      const length = Number.parseInt(body.subarray(0, space).toString('latin1'), 10);
      const record = body.subarray(space + 1, length);
      assert.equal(body[length - 1], 0x0a, 'a record ends in a newline at its stated length');
      const equals = record.indexOf(0x3d);
      records.push([record.subarray(0, equals).toString('latin1'), record.subarray(equals + 1, record.length - 1)]);
      body = body.subarray(length);
    }
    at = TAR_BLOCK + Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
  }
  const block = bytes.subarray(at, at + TAR_BLOCK);
  assert.equal(bytes.length, at + TAR_BLOCK, 'the ustar block ends the header');
  checksum(block);
  return { records, name: field(block, 0, 100), prefix: field(block, 345, 155), linkname: field(block, 157, 100), size: block.subarray(124, 136), typeflag: block.toString('latin1', 156, 157), uname: field(block, 265, 32).toString('latin1'), gname: field(block, 297, 32).toString('latin1') };
}

test('a short ASCII path is one ustar block; a longer one is split into prefix and name', () => {
  const short = parse(tarHeader(base));
  assert.deepEqual([short.records, short.name.toString(), short.typeflag], [[], 'a', '0']);
  const path = `${'d'.repeat(150)}/${'f'.repeat(100)}`;
  const long = parse(tarHeader({ ...base, path: Buffer.from(path) }));
  assert.deepEqual([long.records, long.prefix.toString(), long.name.toString()], [[], 'd'.repeat(150), 'f'.repeat(100)]);
});

test('a path or link target that is not UTF-8 goes in pax records, as bytes, under hdrcharset=BINARY', () => {
  const raw = Buffer.from('caf\xe9', 'latin1');
  const link = parse(tarHeader({ ...base, path: Buffer.from('lien'), type: 'symlink', linkPath: raw }));
  assert.deepEqual(link.records, [['hdrcharset', Buffer.from('BINARY')], ['linkpath', raw]]);
  assert.deepEqual(link.linkname, raw, 'the ustar field holds the same bytes');
  const longest = Buffer.alloc(255, 0xe9);
  const file = parse(tarHeader({ ...base, path: longest }));
  assert.deepEqual(file.records, [['hdrcharset', Buffer.from('BINARY')], ['path', longest]]);
  assert.deepEqual(file.name, longest.subarray(0, 100), 'the ustar name holds what fits');
  const utf8 = parse(tarHeader({ ...base, path: Buffer.from('café') }));
  assert.deepEqual(utf8.records, [['path', Buffer.from('café')]], 'UTF-8 needs no hdrcharset');
});

test('record lengths count their own digits across a digit boundary, and sizes past 8 GiB are exact', () => {
  for (let n = 80; n < 110; n++) parse(tarHeader({ ...base, path: Buffer.alloc(n + 200, 0x61) }));
  const big = parse(tarHeader({ ...base, size: 10 * 2 ** 30 }));
  assert.deepEqual(big.records, [['size', Buffer.from(String(10 * 2 ** 30))]]);
  assert.equal(big.size[0], 0x80, 'base-256 in the ustar field, as GNU tar writes it');
  assert.equal(big.size.readUIntBE(6, 6), 10 * 2 ** 30);
});

test('extended attributes are SCHILY.xattr records as GNU tar writes them; an ACL also as SCHILY.acl text', () => {
  const acl = Buffer.from('0200000001000600ffffffff02000600d204000004000400ffffffff10000600ffffffff20000400ffffffff', 'hex');
  const entry = parse(tarHeader({
    ...base,
    xattrs: [
      { name: Buffer.from('user.a=b%c'), value: Buffer.from([0, 0xff, 0x0a]) },
      { name: Buffer.from('system.posix_acl_access'), value: acl },
      { name: Buffer.from('system.posix_acl_default'), value: Buffer.from('not an acl') },
    ],
  }));
  assert.deepEqual(entry.records, [
    ['SCHILY.xattr.user.a%3Db%25c', Buffer.from([0, 0xff, 0x0a])],
    ['SCHILY.acl.access', Buffer.from('user::rw-\nuser:1234:rw-\ngroup::r--\nmask::rw-\nother::r--\n')],
    ['SCHILY.xattr.system.posix_acl_access', acl],
    ['SCHILY.xattr.system.posix_acl_default', Buffer.from('not an acl')],
  ], 'a value that is not an ACL is kept as an attribute only');
});

test('owner names go in uname/gname beside the ids; one longer than 31 bytes or not ASCII in a pax record, the field empty', () => {
  const table: [string, Partial<TarEntry>, { uname: string; gname: string; records: [string, Buffer][] }][] = [
    ['no names (a guest filesystem, --numeric-owner)', {}, { uname: '', gname: '', records: [] }],
    ['short names', { user: 'www-data', group: 'adm' }, { uname: 'www-data', gname: 'adm', records: [] }],
    ['31 bytes fit with their NUL', { user: 'u'.repeat(31), group: 'g' }, { uname: 'u'.repeat(31), gname: 'g', records: [] }],
    ['32 bytes do not', { user: 'u'.repeat(32) }, { uname: '', gname: '', records: [['uname', Buffer.from('u'.repeat(32))]] }],
    ['not ASCII: UTF-8 in the record', { user: 'root', group: 'équipe' }, { uname: 'root', gname: '', records: [['gname', Buffer.from('équipe')]] }],
  ];
  for (const [what, names, want] of table) {
    const entry = parse(tarHeader({ ...base, ...names }));
    assert.deepEqual({ uname: entry.uname, gname: entry.gname, records: entry.records }, want, what);
  }
});
