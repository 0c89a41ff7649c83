import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VhdDynamicHeader } from './vhd-dynamic-header.js';
import { decodeParentLocator } from './vhd-dynamic-header.js';
import { parentCandidates } from './vhd-parent.js';

const utf16le = (text: string) => Buffer.from(text, 'utf16le');

function header(parentName: string | null, platforms: string[]): VhdDynamicHeader {
  return {
    tableOffset: 1536, version: 0x10000, maxTableEntries: 1, blockSize: 2 << 20, bitmapSize: 512, checksum: 0,
    parentUniqueId: '0'.repeat(32), parentTimestamp: 0, parentName,
    parentLocators: platforms.map((platform, i) => ({ platform, dataSpace: 1, dataLength: 0, dataOffset: 4096 * (i + 1) })),
  };
}

test('parent candidates: W2ru before W2ku before the name; Windows paths made usable here', () => {
  const cases: { name: string; parentName: string | null; locators: [string, Uint8Array][]; expected: string[] }[] = [
    {
      name: 'Hyper-V: relative and absolute locators, absolute name',
      parentName: 'C:\\VMs\\base.vhd',
      locators: [['W2ku', utf16le('C:\\VMs\\base.vhd')], ['W2ru', utf16le('.\\base.vhd\0')]],
      expected: ['/vms/base.vhd'],
    },
    {
      name: 'relative path into a sibling folder, then a POSIX absolute one',
      parentName: null,
      locators: [['W2ku', utf16le('/srv/images/base.vhd')], ['W2ru', utf16le('..\\images\\base.vhd')]],
      expected: ['/images/base.vhd', '/srv/images/base.vhd'],
    },
    {
      name: 'a UNC share and a Mac file URL',
      parentName: 'base.vhd',
      locators: [['W2ku', utf16le('\\\\server\\share\\disk one.vhd')], ['MacX', Buffer.from('file:///Users/me/disk%20one.vhd')]],
      expected: ['/vms/disk one.vhd', '/Users/me/disk one.vhd', '/vms/base.vhd'],
    },
    { name: 'only a parent name', parentName: 'base.vhd', locators: [], expected: ['/vms/base.vhd'] },
    { name: 'a Mac alias names no path', parentName: null, locators: [['Mac ', Buffer.from('alias')]], expected: [] },
  ];
  for (const c of cases) {
    const h = header(c.parentName, c.locators.map(([platform]) => platform));
    assert.deepEqual(parentCandidates('/vms/child.vhd', { header: h, locatorData: c.locators.map(([, data]) => data) }), c.expected, c.name);
  }
});

test('locator data decodes per platform', () => {
  assert.equal(decodeParentLocator('W2ru', utf16le('.\\a.vhd\0\0junk')), '.\\a.vhd');
  assert.equal(decodeParentLocator('W2ku', utf16le('')), null);
  assert.equal(decodeParentLocator('MacX', Buffer.from('http://example.invalid/x')), null);
  assert.equal(decodeParentLocator('Wi2r', Buffer.from('.\\old.vhd\0')), '.\\old.vhd');
  assert.equal(decodeParentLocator('ABCD', Buffer.from('x')), null);
});
