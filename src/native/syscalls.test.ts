import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeTempDir } from '../testing/index.js';
import { syscalls } from './syscalls.js';

/** Resident memory outside the JavaScript heap's accounting: /proc's VmRSS, in bytes. */
function residentBytes(): number {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('VmRSS:')) as string;
  return Number(/(\d+)/.exec(line)?.[1]) * 1024;
}

test('listXattrs: names of a file with attributes, [] without; 30,000 calls on a file without any leave no memory behind', async () => {
  const dir = await makeTempDir('coffer-syscalls');
  try {
    const plain = join(dir.path, 'plain');
    const tagged = join(dir.path, 'tagged');
    await writeFile(plain, 'x');
    await writeFile(tagged, 'y');
    syscalls.setXattr(tagged, 'user.coffer.test', Buffer.from('value'));
    assert.deepEqual(syscalls.listXattrs(tagged), [Buffer.from('user.coffer.test')]);
    assert.deepEqual(syscalls.getXattr(tagged, 'user.coffer.test'), Buffer.from('value'));
    assert.deepEqual(syscalls.listXattrs(plain), []);
    // Names are bytes: one that is not UTF-8 is listed as its bytes and found by them.
    const latin1Name = Buffer.from('user.t\xe9te', 'latin1');
    syscalls.setXattr(tagged, latin1Name, Buffer.from('head'));
    assert.deepEqual(syscalls.listXattrs(tagged).map((n) => n.toString('hex')).sort(), [latin1Name, Buffer.from('user.coffer.test')].map((n) => n.toString('hex')).sort());
    assert.deepEqual(syscalls.getXattr(tagged, latin1Name), Buffer.from('head'));

    // The addon once kept its 64 KiB list buffer whenever a file had no attribute (most files):
    // a backup of 100,000 small files grew by ~400 MB of resident memory. 30,000 calls would
    // hold ≥ 117 MiB then (a touched page each at least); now the buffer is freed every time.
    for (let i = 0; i < 2000; i++) syscalls.listXattrs(plain); // malloc's arenas settle
    const before = residentBytes();
    for (let i = 0; i < 30_000; i++) syscalls.listXattrs(plain);
    const grown = residentBytes() - before;
    assert.ok(grown < 40 * 1024 * 1024, `resident memory grew by ${(grown / 1048576).toFixed(1)} MiB over 30,000 calls`);
  } finally {
    await dir.remove();
  }
});

test('a path given as a Buffer reaches the host as its exact bytes: a Latin-1 name has no UTF-8 string', async () => {
  const dir = await makeTempDir('coffer-syscalls');
  try {
    const folder = Buffer.concat([Buffer.from(`${dir.path}/`), Buffer.from('caf\xe9', 'latin1')]);
    mkdirSync(folder);
    const file = Buffer.concat([folder, Buffer.from('/na\xefve', 'latin1')]);
    writeFileSync(file, 'x');
    syscalls.setXattr(file, 'user.coffer.test', Buffer.from('value'));
    assert.deepEqual(syscalls.listXattrs(file), [Buffer.from('user.coffer.test')]);
    assert.deepEqual(syscalls.getXattr(file, 'user.coffer.test'), Buffer.from('value'));
    syscalls.setTimes(file, 1_000_000_000_123_456_789n, 1_100_000_000_987_654_321n);
    assert.equal(lstatSync(file, { bigint: true }).mtimeNs, 1_100_000_000_987_654_321n);
    syscalls.mknod(Buffer.concat([folder, Buffer.from('/f\xeefo', 'latin1')]), 0o010644, 0, 0);
    const { names } = await syscalls.scanDirectory(folder);
    assert.deepEqual(names.toString('latin1').split('\0').sort(), ['', 'f\xeefo', 'na\xefve']);
    // A NUL inside a Buffer path would cut it short: refused, as in a string.
    assert.throws(() => syscalls.listXattrs(Buffer.from('/tmp\0/x')), { code: 'EINVAL' });
  } finally {
    await dir.remove();
  }
});
