import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeFatTime, decodeLabel, parseDirSlot, shortName, shortNameChecksum } from './dir-entry.js';
// shortNameChecksum itself is checked against mtools' long names in fat.integ.test.ts.
import { foldName } from './fat-node.js';
import { LongNameAssembler } from './long-names.js';

const name11 = (text: string): Uint8Array => Buffer.from(text, 'latin1');

test('FAT dates and times, read as UTC; unset or impossible dates are NaN', () => {
  const date = ((2023 - 1980) << 9) | (11 << 5) | 14;
  const time = (22 << 11) | (13 << 5) | (20 / 2);
  assert.equal(decodeFatTime(date, time), Date.UTC(2023, 10, 14, 22, 13, 20));
  assert.equal(decodeFatTime((0 << 9) | (1 << 5) | 1, 0), Date.UTC(1980, 0, 1));
  assert.equal(decodeFatTime((127 << 9) | (12 << 5) | 31, (23 << 11) | (59 << 5) | 29), Date.UTC(2107, 11, 31, 23, 59, 58));
  assert.ok(Number.isNaN(decodeFatTime(0, 0)));
  assert.ok(Number.isNaN(decodeFatTime((43 << 9) | (13 << 5) | 1, 0)), 'month 13');
  assert.ok(Number.isNaN(decodeFatTime((43 << 9) | (2 << 5) | 31, 0)), '31 February');
});

test('8.3 names: padding, extension, 0x05, NT lower-case flags, code page 437', () => {
  assert.equal(shortName(name11('README  TXT'), 0), 'README.TXT');
  assert.equal(shortName(name11('README  TXT'), 0x08), 'readme.TXT');
  assert.equal(shortName(name11('README  TXT'), 0x10), 'README.txt');
  assert.equal(shortName(name11('NOEXT      '), 0x18), 'noext');
  assert.equal(shortName(Uint8Array.from([0x05, ...name11('BC     TXT')]), 0), 'σBC.TXT'); // 0xE5 in CP437
  assert.equal(shortName(Uint8Array.from([0x43, 0x41, 0x46, 0x90, 0x20, 0x20, 0x20, 0x20, 0x54, 0x58, 0x54]), 0x18), 'café.txt');
  assert.equal(decodeLabel(name11('MY DISK    ')), 'MY DISK');
});

/** The slots a VFAT driver writes for `long` with the short name `short` (11 bytes). */
function slotsFor(long: string, short: string): Uint8Array {
  const units = [...Array.from(long, (c) => c.charCodeAt(0)), 0];
  while (units.length % 13) units.push(0xffff);
  const count = units.length / 13;
  const out = Buffer.alloc(32 * (count + 1));
  const checksum = shortNameChecksum(name11(short));
  for (let i = 0; i < count; i++) {
    const order = count - i;
    const slot = out.subarray(32 * i);
    slot[0] = order | (i === 0 ? 0x40 : 0);
    slot[11] = 0x0f;
    slot[13] = checksum;
    const part = units.slice((order - 1) * 13, order * 13);
    part.forEach((u, j) => slot.writeUInt16LE(u, j < 5 ? 1 + 2 * j : j < 11 ? 14 + 2 * (j - 5) : 28 + 2 * (j - 11)));
  }
  out.write(short, 32 * count, 'latin1');
  out[32 * count + 11] = 0x20;
  return out;
}

function assemble(bytes: Uint8Array): string[] {
  const assembler = new LongNameAssembler();
  const names: string[] = [];
  for (let at = 0; at < bytes.length; at += 32) {
    const named = assembler.push(parseDirSlot(bytes, at, false), at);
    if (named) names.push(named.name);
  }
  return names;
}

test('long names: assembled in order, 8.3 fallback when the sequence or checksum breaks', () => {
  const good = slotsFor('A rather long file name.txt', 'ARATHE~1TXT');
  assert.deepEqual(assemble(good), ['A rather long file name.txt']);
  const wrongChecksum = Buffer.from(good);
  wrongChecksum[32 + 13]! ^= 1;
  assert.deepEqual(assemble(wrongChecksum), ['ARATHE~1.TXT']);
  const missingSlot = Buffer.concat([good.subarray(0, 32), good.subarray(64)]);
  assert.deepEqual(assemble(missingSlot), ['ARATHE~1.TXT']);
  const otherShort = Buffer.concat([good.subarray(0, good.length - 32), slotsFor('x', 'OTHER   TXT').subarray(32)]);
  assert.deepEqual(assemble(otherShort), ['OTHER.TXT']);
  const deletedBetween = Buffer.from(good);
  deletedBetween[32] = 0xe5;
  assert.deepEqual(assemble(deletedBetween), ['ARATHE~1.TXT']);
});

test('names fold case per character, as FAT compares them', () => {
  assert.equal(foldName('Café-ß.txt'), 'CAFÉ-ß.TXT');
  assert.equal(foldName('Ελληνικά'), 'ΕΛΛΗΝΙΚΆ');
});
