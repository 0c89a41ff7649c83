import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeLinkage, vhdxParentCandidates } from './vhdx-parent.js';

test('parent candidates: relative path first, Windows paths made local', () => {
  const cases: { locator: Record<string, string>; expected: string[] }[] = [
    { locator: { relative_path: '.\\base.vhdx', absolute_win32_path: 'C:\\VMs\\base.vhdx' }, expected: ['/vm/base.vhdx'] },
    { locator: { relative_path: '..\\disks\\base.vhdx', absolute_win32_path: 'D:\\x\\other.vhdx' }, expected: ['/disks/base.vhdx', '/vm/other.vhdx'] },
    { locator: { absolute_win32_path: '\\\\server\\share\\p.vhdx', volume_path: '\\\\?\\Volume{1}\\p.vhdx' }, expected: ['/vm/p.vhdx'] },
    { locator: { relative_path: 'a\u0000b' }, expected: [] },
  ];
  for (const { locator, expected } of cases) assert.deepEqual(vhdxParentCandidates('/vm/child.vhdx', new Map(Object.entries(locator))), expected);
});

test('parent linkage GUIDs compare without braces or case', () => {
  assert.equal(normalizeLinkage('{2dc27766-f623-4200-9d64-115e9bfd4a08}'), '2DC27766-F623-4200-9D64-115E9BFD4A08');
});
