/**
 * Backing chains whose layers are of different formats, as administrators meet them after a
 * move between hypervisors, three layers deep: a qcow2 overlay over a VMDK delta over a sparse
 * VMDK (QEMU allows a VMDK delta only over a VMDK), a qcow2 overlay over a differencing VHD
 * over a dynamic VHD, and a qcow2 overlay over a differencing VHDX over a dynamic VHDX (a
 * Hyper-V checkpoint carried to KVM). (A qcow2 overlay over each single format, backed up and restored, is
 * src/backup/every-format.integ.test.ts.)
 *
 * Oracles: where QEMU reads every layer (VMDK, qcow2), `qemu-img convert` of the top
 * image. QEMU ignores a differencing VHD's parent and refuses a differencing VHDX, so for the
 * other two chains the expected bytes are composed: the parent's bytes as qemu-img reads them, the child's writes over them, the
 * overlay's writes over those (whole 64 KiB clusters, so that QEMU never copies up from a
 * backing file it reads without its parent). Extents are checked to cover the disk, to be
 * zero only where the bytes are, and to name the layer each range comes from; placements
 * (where the bytes lie in which file) are checked against the bytes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { buildExt4Disk, deriveDisk, makeDifferencingVhd, makeDifferencingVhdx, requireTools, vhdxDataWriteGuid } from '../testing/index.js';
import type { DiskImage } from './disk-image.js';
import { qemuImgRaw, readWholeImage } from './image-oracle.test-support.js';
import { openDiskImage } from './open-image.js';
import { assertPlacementsMatch } from './placements.test-support.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const KiB = 1024;
let work: string;
let base: string; // raw: GPT + ext4 with files + random bytes

before(async () => {
  await requireTools('qemu-img', 'qemu-io', 'sfdisk', 'mke2fs');
  work = await mkdtemp(join(tmpdir(), 'coffer-mixed-chain-'));
  const disk = await buildExt4Disk({ name: 'mixed-chain-base', size: 48 * MiB, label: 'gpt', partitionSizeMiB: 32, files: 'small' });
  base = await deriveDisk(disk.path, 'mixed-chain-base-edited', [{ offset: 40 * MiB - 70_000, bytes: 300_000, seed: 31 }]);
});
after(() => rm(work, { recursive: true, force: true }));

const at = (name: string) => join(work, name);
const qemuImg = (...args: string[]) => run('qemu-img', args, { maxBuffer: 64 * MiB });
const qemuIo = (format: string, image: string, ...commands: string[]) => run('qemu-io', ['-f', format, ...commands.flatMap((c) => ['-c', c]), image]);

/** Opens `path`, checks its bytes, extents and placements against `expected`; the data bytes each layer gives. */
async function assertChainReads(path: string, expected: Buffer): Promise<{ image: DiskImage; layers: Map<number, number> }> {
  const image = await openDiskImage(path);
  assert.equal(image.size, expected.length);
  const all = await readWholeImage(image);
  for (let offset = 0; offset < expected.length; offset += MiB) {
    if (!all.subarray(offset, offset + MiB).equals(expected.subarray(offset, offset + MiB))) assert.fail(`${path}: the MiB at ${offset} differs from the oracle`);
  }
  const layers = new Map<number, number>();
  let covered = 0;
  for await (const extent of image.extents()) {
    assert.equal(extent.offset, covered, 'extents are ordered and contiguous');
    covered += extent.length;
    if (extent.kind === 'zero') assert.ok(expected.subarray(extent.offset, extent.offset + extent.length).every((b) => b === 0), `zero extent at ${extent.offset} holds data`);
    else if (extent.layer !== undefined) layers.set(extent.layer, (layers.get(extent.layer) ?? 0) + extent.length);
  }
  assert.equal(covered, image.size, 'extents cover the disk');
  await assertPlacementsMatch(image, expected, { label: path });
  return { image, layers };
}

test('qcow2 over a VMDK delta over a sparse VMDK: bytes as qemu-img reads them, each layer named', async () => {
  const vmdkBase = at('base.vmdk');
  const delta = at('delta.vmdk');
  const top = at('top.qcow2');
  await qemuImg('convert', '-f', 'raw', '-O', 'vmdk', base, vmdkBase);
  await qemuImg('create', '-f', 'vmdk', '-b', vmdkBase, '-F', 'vmdk', delta);
  await qemuIo('vmdk', delta, 'write -P 0x51 1M 100k', 'write -P 0x52 39M 1536k'); // a grain's part; over the random bytes
  await qemuImg('create', '-f', 'qcow2', '-b', delta, '-F', 'vmdk', top);
  await qemuIo('qcow2', top, 'write -P 0x61 1M 4k', 'write -z 39M 64k', 'write -P 0x62 47M 1M');
  const expected = await qemuImgRaw(top, work, 'qcow2');
  const { image, layers } = await assertChainReads(top, expected);
  assert.equal(image.format, 'qcow2');
  assert.equal(image.backing?.format, 'vmdk');
  assert.equal(image.backing?.backing?.format, 'vmdk');
  assert.equal(image.backing?.backing?.path, vmdkBase);
  assert.ok((layers.get(0) ?? 0) >= MiB, 'the overlay holds its writes');
  assert.ok((layers.get(1) ?? 0) >= MiB, 'the VMDK delta holds its writes');
  assert.ok((layers.get(2) ?? 0) > 4 * MiB, 'the sparse VMDK holds the filesystem');
  await image.close();
});

test('qcow2 over a differencing VHD over a dynamic VHD: the composed bytes, three layers', async () => {
  const parent = at('parent.vhd');
  const child = at('child.vhd');
  const top = at('over-vhd.qcow2');
  await qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=dynamic,force_size=on', base, parent);
  const expected = await qemuImgRaw(parent, work, 'vpc');
  const childWrites = [
    { pattern: 0x81, offset: 2 * MiB - 4 * KiB, length: 8 * KiB }, // across a VHD block boundary
    { pattern: 0x82, offset: 40 * MiB, length: 512 }, // one sector inside the random bytes
    { pattern: 0x83, offset: 20 * MiB, length: 256 * KiB },
  ];
  await qemuImg('create', '-f', 'vpc', '-o', 'subformat=dynamic,force_size=on', child, String(expected.length));
  await qemuIo('vpc', child, ...childWrites.map((w) => `write -P 0x${w.pattern.toString(16)} ${w.offset} ${w.length}`));
  await makeDifferencingVhd(child, parent, childWrites, [{ platform: 'W2ru', path: `.\\${basename(parent)}` }]);
  for (const w of childWrites) expected.fill(w.pattern, w.offset, w.offset + w.length);
  // Whole clusters only: QEMU would copy up the rest of a cluster from the child without its parent.
  await qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=65536', '-b', child, '-F', 'vpc', top);
  await qemuIo('qcow2', top, 'write -P 0x91 20M 64k', 'write -z 40M 64k', 'write -P 0x92 44M 128k');
  expected.fill(0x91, 20 * MiB, 20 * MiB + 64 * KiB);
  expected.fill(0, 40 * MiB, 40 * MiB + 64 * KiB);
  expected.fill(0x92, 44 * MiB, 44 * MiB + 128 * KiB);
  const { image, layers } = await assertChainReads(top, expected);
  assert.equal(image.backing?.format, 'vpc');
  assert.equal(image.backing?.backing?.format, 'vpc');
  assert.equal(image.backing?.backing?.path, parent);
  assert.equal(layers.get(0), 64 * KiB + 128 * KiB, 'the overlay holds its two data clusters');
  assert.equal(layers.get(1), 8 * KiB + 256 * KiB - 64 * KiB, 'the child holds its sectors but those the overlay covers (the zeroed sector too)');
  assert.ok((layers.get(2) ?? 0) > 4 * MiB, 'the parent holds the filesystem');
  await image.close();
});

test('qcow2 over a differencing VHDX over a dynamic VHDX: the composed bytes, three layers', async () => {
  const parent = at('parent.vhdx');
  const child = at('child.vhdx');
  const top = at('over-vhdx.qcow2');
  await qemuImg('convert', '-f', 'raw', '-O', 'vhdx', '-o', 'block_size=1M', base, parent);
  const expected = await qemuImgRaw(parent, work, 'vhdx');
  const childWrites = [
    { pattern: 0xa1, offset: MiB - 2 * KiB, length: 4 * KiB }, // across a VHDX block boundary
    { pattern: 0xa2, offset: 40 * MiB + 512, length: 512 }, // one sector inside the random bytes
    { pattern: 0xa3, offset: 20 * MiB, length: 256 * KiB },
  ];
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M,block_state_zero=off', child, String(expected.length));
  await qemuIo('vhdx', child, ...childWrites.map((w) => `write -P 0x${w.pattern.toString(16)} ${w.offset} ${w.length}`));
  // The overlay is written while the child is still a plain dynamic VHDX: QEMU refuses to open a
  // differencing one. Whole clusters only, as above.
  await qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=65536', '-b', child, '-F', 'vhdx', top);
  await qemuIo('qcow2', top, 'write -P 0xb1 20M 64k', 'write -z 40M 64k', 'write -P 0xb2 46M 192k');
  const linkage = `{${vhdxDataWriteGuid(await readFile(parent)).toLowerCase()}}`;
  await makeDifferencingVhdx(child, { parent_linkage: linkage, relative_path: `.\\${basename(parent)}` }, childWrites);
  for (const w of childWrites) expected.fill(w.pattern, w.offset, w.offset + w.length);
  expected.fill(0xb1, 20 * MiB, 20 * MiB + 64 * KiB);
  expected.fill(0, 40 * MiB, 40 * MiB + 64 * KiB);
  expected.fill(0xb2, 46 * MiB, 46 * MiB + 192 * KiB);
  const { image, layers } = await assertChainReads(top, expected);
  assert.equal(image.backing?.format, 'vhdx');
  assert.equal(image.backing?.backing?.format, 'vhdx');
  assert.equal(image.backing?.backing?.path, parent);
  assert.equal(layers.get(0), 64 * KiB + 192 * KiB, 'the overlay holds its two data writes');
  assert.equal(layers.get(1), 4 * KiB + 256 * KiB - 64 * KiB, 'the child holds its sectors but those the overlay covers (the zeroed sector too)');
  assert.ok((layers.get(2) ?? 0) > 4 * MiB, 'the parent holds the filesystem');
  await image.close();
});
