import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { isCofferError } from '../errors/index.js';
import { requireTools } from '../testing/index.js';
import { openDiskImage } from './open-image.js';
import type { DiskImage } from './disk-image.js';

/**
 * A guest owns the bytes of its raw disk, including its first sector: it can write a qcow2
 * header there whose backing file names any file of the host. Reading such a disk as the
 * qcow2 it looks like would put that host file in the backup (QEMU's CVE-2008-2004). These
 * tests pin how Coffer keeps a raw disk raw: the backing format an overlay records, the
 * format a caller forces, and a fixed VHD's footer over its (guest-written) first sector.
 */
const run = promisify(execFile);
const MiB = 1024 * 1024;
let work: string;
/** A host file the guest should never see: 1 MiB of 0x77. */
let secret: string;
/** A raw disk whose guest wrote a qcow2 header naming `secret` as its backing file. */
let hostile: string;

before(async () => {
  await requireTools('qemu-img', 'qemu-io');
  work = await mkdtemp(join(tmpdir(), 'coffer-hostile-'));
  secret = join(work, 'secret.raw');
  await writeFile(secret, Buffer.alloc(MiB, 0x77));
  hostile = join(work, 'hostile.raw');
  await run('qemu-img', ['create', '-f', 'qcow2', '-b', secret, '-F', 'raw', hostile, '1M']);
});
after(() => rm(work, { recursive: true, force: true }));

async function readAll(image: DiskImage): Promise<Buffer> {
  try {
    return Buffer.from(await image.read(0, image.size));
  } finally {
    await image.close();
  }
}

test('an overlay recording its backing file as raw reads it raw, as QEMU does: the header the guest wrote is data, the host file it names is never read', async () => {
  const top = join(work, 'top.qcow2');
  await run('qemu-img', ['create', '-f', 'qcow2', '-b', hostile, '-F', 'raw', top]);
  const image = await openDiskImage(top);
  assert.equal(image.backing?.format, 'raw');
  const bytes = await readAll(image);
  const oracle = join(work, 'top-oracle.raw');
  await run('qemu-img', ['convert', '-O', 'raw', top, oracle]);
  assert.ok(bytes.equals(await readFile(oracle)), 'the same bytes as qemu-img reads');
  assert.ok(bytes.subarray(0, (await readFile(hostile)).length).equals(await readFile(hostile)), 'the raw backing file as it is');
  assert.ok(!bytes.includes(Buffer.alloc(4096, 0x77)), 'nothing of the host file');
});

test('--source-format raw: a raw disk whose guest wrote a qcow2 header is read as the raw disk it is', async () => {
  const probed = await openDiskImage(hostile);
  assert.equal(probed.format, 'qcow2', 'probed, it looks like a qcow2');
  await probed.close();
  const image = await openDiskImage(hostile, { format: 'raw' });
  assert.equal(image.format, 'raw');
  assert.equal(image.backing, null);
  assert.ok((await readAll(image)).equals(await readFile(hostile)));
});

test('a forced format the content does not show is E_IMAGE_INVALID, naming both', async () => {
  await assert.rejects(openDiskImage(secret, { format: 'qcow2' }), (error) => isCofferError(error, 'E_IMAGE_INVALID') && /should be a qcow2 image/.test(error.message) && /no image format/.test(error.message));
  const recordedWrong = join(work, 'recorded-wrong.qcow2');
  // The overlay records a qcow2 backing file where a raw one lies.
  await run('qemu-img', ['create', '-f', 'qcow2', '-b', secret, '-F', 'qcow2', '-u', recordedWrong, '1M']);
  await assert.rejects(openDiskImage(recordedWrong), (error) => isCofferError(error, 'E_IMAGE_INVALID') && error.message.includes(recordedWrong) && /records its backing file/.test(error.message));
});

test('a fixed VHD whose guest wrote a qcow2 header in its first sector is still the fixed VHD its footer says', async () => {
  const vhd = join(work, 'fixed.vhd');
  await run('qemu-img', ['create', '-f', 'vpc', '-o', 'subformat=fixed', vhd, '4M']);
  const header = (await readFile(hostile)).subarray(0, 65536);
  const headerFile = join(work, 'header.bin');
  await writeFile(headerFile, header);
  await run('qemu-io', ['-f', 'vpc', '-c', `write -s ${headerFile} 0 ${header.length}`, vhd]);
  const image = await openDiskImage(vhd);
  assert.equal(image.format, 'vpc');
  assert.equal(image.backing, null);
  const bytes = await readAll(image);
  assert.ok(bytes.subarray(0, header.length).equals(header), 'the header is the guest\'s data');
});

test('a backing file that cannot be opened names the image that needs it; a backing format Coffer does not read is E_UNSUPPORTED_FORMAT', async () => {
  const orphan = join(work, 'orphan.qcow2');
  await run('qemu-img', ['create', '-f', 'qcow2', '-b', join(work, 'gone.raw'), '-F', 'raw', '-u', orphan, '1M']);
  await assert.rejects(openDiskImage(orphan), (error) => isCofferError(error, 'E_SOURCE_UNREADABLE') && error.message.includes(orphan) && error.message.includes('gone.raw'));
  const qed = join(work, 'on-qed.qcow2');
  await run('qemu-img', ['create', '-f', 'qcow2', '-b', join(work, 'base.qed'), '-F', 'qed', '-u', qed, '1M']);
  await assert.rejects(openDiskImage(qed), (error) => isCofferError(error, 'E_UNSUPPORTED_FORMAT') && /"qed"/.test(error.message));
});
