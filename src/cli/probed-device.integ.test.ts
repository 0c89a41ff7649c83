/**
 * A block device (here a loop device over a file) whose guest wrote a qcow2 header naming a
 * host file as its backing file: backed up without `--source-format`, the chain is read (it
 * could be qcow2 on a logical volume, as oVirt stores disks) but the backup says so on stderr
 * and in its warnings, naming the files and the option; with `--source-format raw` the device
 * is backed up as the raw disk it is, nothing of the host file in it, and no warning.
 */
import assert from 'node:assert/strict';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTools, runTool } from '../testing/index.js';
import { assertExit, coffer, makeWorkDir, removeDir } from './cli-harness.js';

const MiB = 1024 * 1024;
const env = { COFFER_PASSWORD: 'probed' };
let work: string;
let repo: string;
let secret: string;
let device: string | undefined;
const devices: string[] = [];

before(async () => {
  await requireTools('qemu-img', 'losetup');
  work = await makeWorkDir('probed-device');
  repo = join(work, 'repo');
  secret = join(work, 'secret.raw');
  await writeFile(secret, Buffer.alloc(MiB, 0x77));
  const disk = join(work, 'guest.raw');
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', disk, '1M']);
  await truncate(disk, 4 * MiB);
  device = (await runTool('losetup', ['--find', '--show', disk])).trim();
  devices.push(device);
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
});
after(async () => {
  for (const d of devices) await runTool('losetup', ['--detach', d]).catch(() => undefined);
  await removeDir(work);
});

test('a block device read as an image chain is warned of; --source-format raw reads it raw, silently', async () => {
  const probed = await coffer(['backup', '-r', repo, '--vm', 'guest', device as string, '--json'], { env });
  assertExit(probed, 0);
  const stderr = probed.stderr.toString();
  assert.match(stderr, new RegExp(`coffer: warning: block device ${device} holds a qcow2 image that made Coffer read other files \\(${secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\) into this backup`));
  assert.match(stderr, /--source-format raw/);
  const json = JSON.parse(probed.stdout.toString()) as { warnings?: string[] };
  assert.ok(json.warnings?.some((w) => w.includes('--source-format raw')), 'the warning is in the result too');

  const raw = await coffer(['backup', '-r', repo, '--vm', 'guest-raw', device as string, '--source-format', 'raw', '--json'], { env });
  assertExit(raw, 0);
  assert.doesNotMatch(raw.stderr.toString(), /warning/);
  const out = join(work, 'restored.raw');
  assertExit(await coffer(['restore', '-r', repo, 'guest-raw:latest', '--to', out], { env }), 0);
  const restored = await readFile(out);
  assert.equal(restored.length, 4 * MiB);
  assert.ok(restored.subarray(0, 4).equals(Buffer.from('QFI\xfb', 'latin1')), 'the header the guest wrote is data of its disk');
  assert.ok(!restored.includes(Buffer.alloc(4096, 0x77)), 'nothing of the host file');
});

test('a guest that writes a VMDK descriptor naming a sibling device is warned of, the sibling named', async () => {
  // The sibling: another device of the host (here a loop device over the secret).
  const sibling = (await runTool('losetup', ['--find', '--show', secret])).trim();
  devices.push(sibling);
  const disk = join(work, 'guest-vmdk.raw');
  const descriptor = `# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "${sibling.replace('/dev/', '')}" 0\n`;
  await writeFile(disk, descriptor);
  // Only a file or device of at most 1 MiB can be a descriptor: larger ones are refused (exit 3).
  await truncate(disk, 64 * 1024);
  const guest = (await runTool('losetup', ['--find', '--show', disk])).trim();
  devices.push(guest);
  const probed = await coffer(['backup', '-r', repo, '--vm', 'guest-vmdk', guest], { env });
  assertExit(probed, 0);
  assert.match(probed.stderr.toString(), new RegExp(`block device ${guest} holds a vmdk image that made Coffer read other files \\(${sibling}\\)`));
});
