import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseReparsePoint, posixTarget, ReparseTag } from './reparse-point.js';

test('Windows link targets become POSIX-ish', () => {
  const table: [string, boolean, string][] = [
    ['..\\docs\\readme.txt', true, '../docs/readme.txt'],
    ['nowhere\\at\\all', true, 'nowhere/at/all'],
    ['C:\\etc\\hostname', false, '/etc/hostname'],
    ['\\??\\C:\\etc\\hostname', false, '/etc/hostname'],
    ['\\??\\D:\\', false, '/'],
    ['\\??\\UNC\\server\\share\\f.txt', false, '//server/share/f.txt'],
    ['\\??\\Volume{0d6c4b5e-1f44-4a5b-9d2e-0c3e6f1a2b3c}\\data', false, '/Volume{0d6c4b5e-1f44-4a5b-9d2e-0c3e6f1a2b3c}/data'],
    ['\\Windows\\System32', false, '/Windows/System32'],
  ];
  for (const [windows, relative, posix] of table) assert.equal(posixTarget(windows, relative), posix, windows);
});

function linkData(tag: number, substitute: string, print: string, flags?: number): Uint8Array {
  const sub = Buffer.from(substitute, 'utf16le');
  const prn = Buffer.from(print, 'utf16le');
  const header = Buffer.alloc(flags === undefined ? 8 : 12);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(sub.length, 2);
  header.writeUInt16LE(sub.length, 4);
  header.writeUInt16LE(prn.length, 6);
  if (flags !== undefined) header.writeUInt32LE(flags, 8);
  const data = Buffer.concat([header, sub, prn]);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(tag, 0);
  head.writeUInt16LE(data.length, 4);
  return Buffer.concat([head, data]);
}

test('symlinks, junctions, WSL links and other tags', () => {
  assert.deepEqual(parseReparsePoint(linkData(ReparseTag.SYMLINK, '..\\a', '..\\a', 1), 't'), { tag: ReparseTag.SYMLINK, nodeType: 'symlink', target: '../a', attribute: 'reparse:symlink' });
  assert.equal(parseReparsePoint(linkData(ReparseTag.MOUNT_POINT, '\\??\\C:\\data', ''), 't').target, '/data');
  const wsl = Buffer.concat([Buffer.from([0x1d, 0, 0, 0xa0, 10, 0, 0, 0, 2, 0, 0, 0]), Buffer.from('../tgt')]);
  assert.equal(parseReparsePoint(wsl, 't').target, '../tgt');
  assert.deepEqual(parseReparsePoint(Buffer.from([0x13, 0, 0, 0x80, 0, 0, 0, 0]), 't'), { tag: 0x80000013, attribute: 'reparse:0x80000013' });
  assert.throws(() => parseReparsePoint(linkData(ReparseTag.SYMLINK, 'x', 'y', 0).subarray(0, 20), 't'));
});
