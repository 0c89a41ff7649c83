import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CofferError, isCofferError, type ErrorCode } from '../../errors/index.js';
import { isVmdkDescriptor } from '../detect.js';
import { parseDescriptor, type ExtentLine } from './descriptor.js';

const image = {
  invalid: (problem: string) => new CofferError('E_IMAGE_INVALID', `d.vmdk: ${problem}`),
  unsupported: (feature: string) => new CofferError('E_UNSUPPORTED_FORMAT', `d.vmdk: ${feature} is not supported`),
};

test('a descriptor as qemu-img writes it (delta, CRLF line ends, disk database)', () => {
  const text = [
    '# Disk DescriptorFile',
    'version=1',
    'CID=7a84b83f',
    'parentCID=e8480205',
    'createType="twoGbMaxExtentSparse"',
    'parentFileNameHint="/vm/base disk.vmdk"',
    '',
    '# Extent description',
    'RW 4194304 SPARSE "d-s001.vmdk"',
    'RDONLY 2097152 FLAT "sub/d f002.vmdk" 2048',
    'RW 8 ZERO',
    'RW 16 VMFS "d-flat.vmdk"',
    '',
    '# The Disk Data Base',
    'ddb.adapterType = "ide"',
    'ddb.uuid = "60 00 C2 9b"',
  ].join('\r\n');
  assert.deepEqual(parseDescriptor(text, image), {
    version: 1,
    cid: 0x7a84b83f,
    parentCid: 0xe8480205,
    createType: 'twoGbMaxExtentSparse',
    parentFileNameHint: '/vm/base disk.vmdk',
    extents: [
      { access: 'RW', sectors: 4194304, type: 'SPARSE', fileName: 'd-s001.vmdk', offset: 0 },
      { access: 'RDONLY', sectors: 2097152, type: 'FLAT', fileName: 'sub/d f002.vmdk', offset: 2048 },
      { access: 'RW', sectors: 8, type: 'ZERO', fileName: null, offset: 0 },
      { access: 'RW', sectors: 16, type: 'VMFS', fileName: 'd-flat.vmdk', offset: 0 },
    ] satisfies ExtentLine[],
  });
});

test('parentCID ffffffff means no parent', () => {
  assert.equal(parseDescriptor('parentCID=ffffffff\ncreateType="monolithicSparse"\n', image).parentCid, null);
});

const refused: [string, string, ErrorCode][] = [
  ['parent folder', 'RW 8 FLAT "../x.vmdk" 0', 'E_IMAGE_INVALID'],
  ['nested parent folder', 'RW 8 SPARSE "a/../../x.vmdk"', 'E_IMAGE_INVALID'],
  ['absolute', 'RW 8 FLAT "/etc/passwd" 0', 'E_IMAGE_INVALID'],
  ['Windows absolute', 'RW 8 FLAT "C:\\vm\\x.vmdk" 0', 'E_IMAGE_INVALID'],
  ['Windows parent folder', 'RW 8 FLAT "..\\x.vmdk" 0', 'E_IMAGE_INVALID'],
  ['empty name', 'RW 8 SPARSE ""', 'E_IMAGE_INVALID'],
  ['FLAT without offset', 'RW 8 FLAT "x.vmdk"', 'E_IMAGE_INVALID'],
  ['SPARSE with offset', 'RW 8 SPARSE "x.vmdk" 5', 'E_IMAGE_INVALID'],
  ['ZERO with a file', 'RW 8 ZERO "x.vmdk"', 'E_IMAGE_INVALID'],
  ['zero sectors', 'RW 0 SPARSE "x.vmdk"', 'E_IMAGE_INVALID'],
  ['absurd size', 'RW 99999999999999999 FLAT "x.vmdk" 0', 'E_IMAGE_INVALID'],
  ['negative size', 'RW -8 FLAT "x.vmdk" 0', 'E_IMAGE_INVALID'],
  ['unquoted name', 'RW 8 FLAT x.vmdk 0', 'E_IMAGE_INVALID'],
  ['unknown extent type', 'RW 8 CLOUD "x.vmdk"', 'E_UNSUPPORTED_FORMAT'],
  ['bad CID', 'CID=xyz', 'E_IMAGE_INVALID'],
];

for (const [name, line, code] of refused) {
  test(`descriptor refused: ${name}`, () => {
    assert.throws(() => parseDescriptor(`createType="monolithicFlat"\n${line}\n`, image), (error) => isCofferError(error, code) && error.message.startsWith('d.vmdk:'));
  });
}

test('a descriptor over 1 MiB is refused', () => {
  assert.throws(() => parseDescriptor(`#${'x'.repeat(1024 * 1024)}`, image), (error) => isCofferError(error, 'E_IMAGE_INVALID'));
});

test('an embedded descriptor: the extent line (the file itself) is not used', () => {
  const text = 'createType="monolithicSparse"\nparentFileNameHint="base.vmdk"\nRW 2048 SPARSE "C:\\vms\\d.vmdk"\n';
  const descriptor = parseDescriptor(text, image, { embedded: true });
  assert.deepEqual([descriptor.parentFileNameHint, descriptor.extents], ['base.vmdk', []]);
});

test('a text descriptor is recognised as QEMU probes one: comments and lines of spaces, then version=1-3', () => {
  const yes = ['# Disk DescriptorFile\nversion=1\n', 'version=2\r\nCID=1\n', '# a\n# b\n   \nversion=3\n', '  \r\nversion=1\r\n'];
  const no = ['', 'version=1', '\nversion=1\n', 'version=4\n', 'CID=1\nversion=1\n', '# only a comment', 'KDMV', 'version=1 \n'];
  for (const text of yes) assert.ok(isVmdkDescriptor(Buffer.from(text)), JSON.stringify(text));
  for (const text of no) assert.ok(!isVmdkDescriptor(Buffer.from(text)), JSON.stringify(text));
});
