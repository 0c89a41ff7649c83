import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildExt4Disk, requireTools } from '../testing/index.js';
import { assertExit, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir, runTool } from './cli-harness.js';

const MiB = 1024 * 1024;
let work: string;
let base: string;

before(async () => {
  await requireTools('qemu-img', 'qemu-io', 'sfdisk', 'mke2fs');
  work = await makeWorkDir('disk');
  base = (await buildExt4Disk({ name: 'cli-disk-base', size: 64 * MiB, label: 'gpt', partitionSizeMiB: 40, files: 'small' })).path;
});
after(() => removeDir(work));

interface InfoJson {
  path: string;
  format: string;
  virtualSize: number;
  dataBytes: number;
  details: Record<string, unknown>;
  chain: { path: string; format: string }[];
}

test('disk info and disk map describe a qcow2 chain like qemu-img does', async () => {
  const bottom = join(work, 'base.qcow2');
  const top = join(work, 'top.qcow2');
  await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-c', base, bottom]);
  await runTool('qemu-img', ['create', '-f', 'qcow2', '-b', bottom, '-F', 'qcow2', top]);
  await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 5M 128k', top]);
  const info = await cofferJson<InfoJson>(['disk', 'info', '--json', top]);
  assert.equal(info.format, 'qcow2');
  assert.equal(info.virtualSize, 64 * MiB);
  assert.deepEqual(info.chain.map((layer) => layer.format), ['qcow2']);
  assert.equal(info.details.clusterSize, 65536);

  // qemu-img map's allocated data ranges, per depth, against ours per layer.
  const qemu = JSON.parse((await runTool('qemu-img', ['map', '--output=json', top])).stdout) as { start: number; length: number; depth: number; data: boolean }[];
  const ours = await cofferJson<{ offset: number; length: number; kind: string; layer?: number }[]>(['disk', 'map', '--json', top]);
  const dataBytes = (ranges: { length: number }[]) => ranges.reduce((sum, r) => sum + r.length, 0);
  for (const depth of [0, 1]) {
    assert.equal(
      dataBytes(ours.filter((e) => e.kind === 'data' && e.layer === depth)),
      dataBytes(qemu.filter((e) => e.data && e.depth === depth)),
      `data at depth ${depth}`,
    );
  }
});

test('backup of a compressed qcow2 chain restores byte-identical, by qemu-img compare', async () => {
  const top = join(work, 'top.qcow2');
  const repo = join(work, 'repo');
  const env = { COFFER_PASSWORD: 'pw' };
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'q', top], { env }), 0);
  const out = join(work, 'restored.raw');
  assertExit(await coffer(['restore', '-r', repo, 'latest', '--to', out], { env }), 0);
  const compare = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', out, top]);
  assert.equal(compare.code, 0, compare.stdout + compare.stderr);
  const raw = join(work, 'oracle.raw');
  await runTool('qemu-img', ['convert', '-O', 'raw', top, raw]);
  await assertSameBytes(out, raw);
});

test('disk info on a missing or broken image exits 3 with one line', async () => {
  assertExit(await coffer(['disk', 'info', join(work, 'nothing.qcow2')]), 3);
});

test('restore --format qcow2 writes an image qemu-img checks and finds identical', async () => {
  const top = join(work, 'top.qcow2');
  const repo = join(work, 'repo');
  const env = { COFFER_PASSWORD: 'pw' };
  const out = join(work, 'restored.qcow2');
  assertExit(await coffer(['restore', '-r', repo, 'latest', '--format', 'qcow2', '--to', out], { env }), 0);
  assert.equal((await runTool('qemu-img', ['check', out])).code, 0);
  const compare = await runTool('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', out, top]);
  assert.equal(compare.code, 0, compare.stdout + compare.stderr);
  assertExit(await coffer(['restore', '-r', repo, 'latest', '--format', 'vdi', '--to', join(work, 'x.vdi')], { env }), 2);
});

test('disk convert: qcow2 chain to raw and to qcow2, both identical by qemu-img compare', async () => {
  const top = join(work, 'top.qcow2');
  for (const format of ['raw', 'qcow2']) {
    const out = join(work, `converted.${format}`);
    assertExit(await coffer(['disk', 'convert', top, out, '--format', format]), 0);
    const compare = await runTool('qemu-img', ['compare', '-f', format, '-F', 'qcow2', out, top]);
    assert.equal(compare.code, 0, compare.stdout + compare.stderr);
    assertExit(await coffer(['disk', 'convert', top, out, '--format', format]), 4); // exists
  }
  // The input as the output, even with --overwrite, through a symlink, or a layer of its chain: refused, nothing changed.
  const backing = (JSON.parse((await runTool('qemu-img', ['info', '--output=json', top])).stdout) as { 'full-backing-filename': string })['full-backing-filename'];
  const link = join(work, 'link-to-backing.img');
  await fs.symlink(backing, link);
  const before = await Promise.all([fs.readFile(top), fs.readFile(backing)]);
  for (const output of [top, link]) {
    const refused = await coffer(['disk', 'convert', top, output, '--format', 'raw', '--overwrite']);
    assertExit(refused, 4);
    assert.match(refused.stderr.toString(), /cannot convert to .*: it is (the input image|.*which the input image reads)/);
  }
  const after = await Promise.all([fs.readFile(top), fs.readFile(backing)]);
  assert.ok(before[0]!.equals(after[0]!) && before[1]!.equals(after[1]!), 'the input and its backing file are untouched');
  await fs.rm(link);
});

test('qcow2 internal snapshots: disk info lists them, backup --image-snapshot reads one', async () => {
  const image = join(work, 'snapshots.qcow2');
  await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', base, image]);
  await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x21 1M 256k', image]);
  assert.equal((await runTool('qemu-img', ['snapshot', '-c', 'before-upgrade', image])).code, 0);
  await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x42 1M 512k', '-c', 'write -P 0x43 20M 64k', image]);
  assert.equal((await runTool('qemu-img', ['bitmap', '--add', '-g', '128k', image, 'nightly'])).code, 0);
  const info = await cofferJson<{ internalSnapshots: { id: string; name: string }[]; details: { persistentBitmaps: string } }>(['disk', 'info', '--json', image]);
  assert.deepEqual(info.internalSnapshots.map((s) => s.name), ['before-upgrade']);
  assert.equal(info.details.persistentBitmaps, 'nightly (128 KiB, tracking)');

  const repo = join(work, 'repo-snapshots');
  const env = { COFFER_PASSWORD: 'pw' };
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 's', '--image-snapshot', 'before-upgrade', image], { env }), 0);
  const restored = join(work, 'snapshot-restored.raw');
  assertExit(await coffer(['restore', '-r', repo, 'latest', '--to', restored], { env }), 0);
  const oracle = join(work, 'snapshot-oracle.raw');
  assert.equal((await runTool('qemu-img', ['convert', '-l', 'snapshot.name=before-upgrade', '-O', 'raw', image, oracle])).code, 0);
  await assertSameBytes(restored, oracle);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 's', '--image-snapshot', 'nope', image], { env }), 2);
  assertExit(await coffer(['disk', 'info', '--image-snapshot', 'x', base]), 3); // raw has no internal snapshots
});

/** Every output format: what qemu-img calls it, and whether qemu-img check supports it. */
const OUTPUTS = [
  { format: 'raw', qemu: 'raw', check: false },
  { format: 'qcow2', qemu: 'qcow2', check: true },
  { format: 'vhd', qemu: 'vpc', check: false },
  { format: 'vhd-fixed', qemu: 'vpc', check: false },
  { format: 'vhdx', qemu: 'vhdx', check: true },
  { format: 'vmdk', qemu: 'vmdk', check: true },
  { format: 'vmdk-sparse', qemu: 'vmdk', check: true },
];

test('backup then restore to every output format: qemu-img compare (and check) pass', async () => {
  const top = join(work, 'top.qcow2');
  const repo = join(work, 'repo');
  const env = { COFFER_PASSWORD: 'pw' };
  for (const output of OUTPUTS) {
    const out = join(work, `every-format.${output.format}`);
    assertExit(await coffer(['restore', '-r', repo, 'latest', '--format', output.format, '--to', out], { env }), 0);
    if (output.check) {
      const check = await runTool('qemu-img', ['check', '-f', output.qemu, out]);
      assert.equal(check.code, 0, `${output.format}: ${check.stdout}${check.stderr}`);
    }
    const compare = await runTool('qemu-img', ['compare', '-f', output.qemu, '-F', 'qcow2', out, top]);
    assert.equal(compare.code, 0, `${output.format}: ${compare.stdout}${compare.stderr}`);
  }
});

test('--source-format raw keeps a raw disk whose guest wrote a qcow2 header raw, for disk info and for a backup; an unknown format is a usage error', async () => {
  const secret = join(work, 'host-secret.raw');
  await runTool('qemu-img', ['create', '-f', 'raw', secret, '1M']);
  await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 0 1M', secret]);
  // What a guest can write in the first sector of its raw disk: a qcow2 header naming a host file.
  const disk = join(work, 'guest-raw-disk.img');
  await runTool('qemu-img', ['create', '-f', 'qcow2', '-b', secret, '-F', 'raw', disk, '1M']);

  const info = await cofferJson<InfoJson>(['disk', 'info', '--json', '--source-format', 'raw', disk]);
  assert.equal(info.format, 'raw');
  assert.deepEqual(info.chain, [], 'no backing chain: the host file the header names is not opened');

  const env = { COFFER_PASSWORD: 'source-format' };
  const repo = join(work, 'source-format-repo');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'rawvm', '--source-format', 'raw', disk], { env }), 0);
  const restored = join(work, 'source-format-restored.raw');
  assertExit(await coffer(['restore', '-r', repo, 'rawvm:latest', '--to', restored], { env }), 0);
  await assertSameBytes(restored, disk, 'the raw disk, header and all');

  assertExit(await coffer(['disk', 'info', '--source-format', 'qcow3', disk]), 2);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'rawvm', '--source-format', 'vhd', disk], { env }), 2);
});

test('disk info says what a VHD and a multi-file VMDK are, and counts every file of the VMDK', async () => {
  const vhd = join(work, 'info.vhd');
  await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', base, vhd]);
  const vhdInfo = await cofferJson<InfoJson>(['disk', 'info', '--json', vhd]);
  assert.equal(vhdInfo.format, 'vpc');
  assert.equal(vhdInfo.details.subformat, 'dynamic');
  assert.equal(vhdInfo.details.blockSize, 2 * MiB);
  const fixed = join(work, 'info-fixed.vhd');
  await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=fixed', base, fixed]);
  assert.equal((await cofferJson<InfoJson>(['disk', 'info', '--json', fixed])).details.subformat, 'fixed');

  const vmdk = join(work, 'info-flat.vmdk');
  await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat', base, vmdk]);
  const vmdkInfo = await cofferJson<InfoJson & { fileSize: number }>(['disk', 'info', '--json', vmdk]);
  assert.equal(vmdkInfo.details.createType, 'twoGbMaxExtentFlat');
  assert.equal(vmdkInfo.details.flatExtents, 1);
  assert.equal(vmdkInfo.details.files, 2);
  const qemu = JSON.parse((await runTool('qemu-img', ['info', '--output=json', vmdk])).stdout) as { 'actual-size': number };
  assert.equal(vmdkInfo.fileSize, qemu['actual-size'], 'the descriptor and its extent file, as qemu-img counts them');
  const dataBytes = vmdkInfo.dataBytes;
  assert.ok(dataBytes > MiB && dataBytes < 64 * MiB, `${dataBytes} data bytes: the flat extent's holes are not data`);
});
