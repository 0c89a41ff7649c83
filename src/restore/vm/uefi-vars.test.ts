/**
 * secureBootOfStore on the real variable stores Debian's OVMF ships (an empty one, and one with
 * Microsoft's keys enrolled and Secure Boot on, which .ci/run installs with ovmf), altered
 * copies of them (Secure Boot turned off, the platform key deleted, a variable running past the
 * end) and bytes that are no store at all.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { secureBootOfStore } from './uefi-vars.js';

const EMPTY = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const ENROLLED = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';
const HEADER = 60; // an authenticated variable's header

/** Offsets of the live variable `name` in an authenticated store (its header's start). */
function variableAt(store: Buffer, name: string): number {
  const storeAt = store.readUInt16LE(48);
  let found = -1;
  for (let at = storeAt + 28; store.readUInt16LE(at) === 0x55aa; ) {
    const nameSize = store.readUInt32LE(at + 36);
    const dataSize = store.readUInt32LE(at + 40);
    if (store[at + 2] === 0x3f && store.toString('utf16le', at + HEADER, at + HEADER + nameSize).replace(/\0+$/, '') === name) found = at;
    at = (at + HEADER + nameSize + dataSize + 3) & ~3;
  }
  assert.ok(found >= 0, `${name} is in the store`);
  return found;
}

test('Debian\'s stores: the empty one does not enforce Secure Boot, the one with Microsoft\'s keys does', async () => {
  assert.equal(secureBootOfStore(await readFile(EMPTY)), false);
  assert.equal(secureBootOfStore(await readFile(ENROLLED)), true);
});

test('Secure Boot turned off, or the platform key deleted, is not enforced; an entry being replaced still counts', async () => {
  const off = await readFile(ENROLLED);
  const enable = variableAt(off, 'SecureBootEnable');
  off[enable + HEADER + off.readUInt32LE(enable + 36)] = 0;
  assert.equal(secureBootOfStore(off), false);

  const deleted = await readFile(ENROLLED);
  deleted[variableAt(deleted, 'PK') + 2] = 0x3c; // VAR_ADDED & VAR_DELETED
  assert.equal(secureBootOfStore(deleted), false);

  const replacing = await readFile(ENROLLED);
  replacing[variableAt(replacing, 'PK') + 2] = 0x3e; // VAR_ADDED & VAR_IN_DELETED_TRANSITION
  assert.equal(secureBootOfStore(replacing), true);
});

test('bytes that are no variable store, or a store cut or lying about sizes, never throw', async () => {
  assert.equal(secureBootOfStore(new Uint8Array(0)), undefined);
  assert.equal(secureBootOfStore(Buffer.alloc(540672)), undefined, 'zeros');
  const enrolled = await readFile(ENROLLED);
  assert.equal(secureBootOfStore(enrolled.subarray(0, 100)), undefined, 'cut inside the store header');
  const wrongGuid = Buffer.from(enrolled);
  const guidAt = wrongGuid.readUInt16LE(48);
  wrongGuid[guidAt] = (wrongGuid[guidAt] as number) ^ 0xff;
  assert.equal(secureBootOfStore(wrongGuid), undefined);
  const runaway = Buffer.from(enrolled);
  runaway.writeUInt32LE(0xfffffff0, variableAt(runaway, 'db') + 40); // db's data size past the end
  assert.equal(secureBootOfStore(runaway), undefined);
  assert.equal(secureBootOfStore(enrolled.subarray(0, variableAt(enrolled, 'PK') + 70)), undefined, 'cut inside the platform key');
});
