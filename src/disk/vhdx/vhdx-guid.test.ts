import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guidBytes, readGuid } from './vhdx-guid.js';

test('GUIDs read in the mixed-endian layout: the BAT region GUID as qemu-img stores it', () => {
  const stored = Buffer.from('6677c22d23f600429d64115e9bfd4a08', 'hex'); // bytes from a qemu-img VHDX region table
  assert.equal(readGuid(stored, 0), '2DC27766-F623-4200-9D64-115E9BFD4A08');
  assert.ok(guidBytes('2dc27766-f623-4200-9d64-115e9bfd4a08').equals(stored));
  assert.equal(readGuid(Buffer.concat([Buffer.alloc(3), stored]), 3), '2DC27766-F623-4200-9D64-115E9BFD4A08');
});
