/**
 * `coffer files SNAPSHOT`: the volumes of backed-up disks, read from the repository. The
 * oracles are what sfdisk and LVM reported when the fixtures were built.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildGptVolumesDisk, buildLvmOneDisk, buildLvmTwoDisks, GPT_DISK_PARTITIONS, requireTools } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir } from './cli-harness.js';

interface VolumeJson {
  disk: string;
  volume: string;
  kind: string;
  size: number;
  offset?: number;
  type: string;
  filesystem: string | null;
  label: string;
  notes: string[];
}

let work: string;
let repo: string;
const env = { COFFER_PASSWORD: 'volumes test' };

before(async () => {
  await requireTools('sfdisk', 'pvcreate', 'cryptsetup', 'losetup');
  work = await makeWorkDir('files-volumes');
  repo = `${work}/repo`;
  assertExit(await coffer(['init', '-r', repo], { env, timeoutMs: 180_000 }), 0);
});
after(() => removeDir(work));

test('the partitions of a GPT disk, encrypted ones named as such', async () => {
  const disk = await buildGptVolumesDisk();
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'gpt', disk], { env, timeoutMs: 180_000 }), 0);
  const volumes = await cofferJson<VolumeJson[]>(['files', '-r', repo, 'gpt:latest'], { env, timeoutMs: 180_000 });
  assert.deepEqual(volumes.map((v) => v.volume), GPT_DISK_PARTITIONS.map((_, i) => `p${i + 1}`));
  let start = 1 << 20;
  for (const [i, p] of GPT_DISK_PARTITIONS.entries()) {
    const v = volumes[i] as VolumeJson;
    assert.equal(v.size, p.mib << 20, v.volume);
    assert.equal(v.offset, start, v.volume);
    assert.equal(v.label, p.name, v.volume);
    start += p.mib << 20;
  }
  assert.equal(volumes[8]?.filesystem, 'luks (encrypted)');
  assert.equal(volumes[9]?.filesystem, 'luks (encrypted)');
  assert.equal(volumes[10]?.filesystem, 'bitlocker (encrypted)');

  const encrypted = await coffer(['files', '-r', repo, 'gpt:latest', 'ls', 'p9:/'], { env, timeoutMs: 180_000 });
  assertExit(encrypted, 14);
  assert.match(assertOneLineError(encrypted), /p9 is LUKS-encrypted/);
  const missing = await coffer(['files', '-r', repo, 'gpt:latest', 'ls', 'p42:/'], { env, timeoutMs: 180_000 });
  assertExit(missing, 2);
  assert.match(assertOneLineError(missing), /no volume p42 .*volumes: p1, p2/);
  const noFs = await coffer(['files', '-r', repo, 'gpt:latest', 'ls', 'p4:/'], { env, timeoutMs: 180_000 });
  assertExit(noFs, 14);
  assert.match(assertOneLineError(noFs), /p4 holds no filesystem Coffer reads/);
  const badTarget = await coffer(['files', '-r', repo, 'gpt:latest', 'ls', '/etc'], { env, timeoutMs: 180_000 });
  assertExit(badTarget, 2);
  assert.match(assertOneLineError(badTarget), /write VOLUME:\/PATH/);
});

test('logical volumes striped and spanning over two disks of one VM', async () => {
  const { disks, oracle } = await buildLvmTwoDisks();
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'lvm', ...disks], { env, timeoutMs: 180_000 }), 0);
  const volumes = await cofferJson<VolumeJson[]>(['files', '-r', repo, 'lvm:latest'], { env, timeoutMs: 180_000 });
  const lvs = volumes.filter((v) => v.kind === 'logical-volume');
  assert.deepEqual(lvs.map((v) => v.volume).sort(), [...new Set(oracle.lvs.map((r) => `${r['vg_name']}/${r['lv_name']}`))].sort(), 'one volume per LV (the report has a row per segment)');
  for (const lv of lvs) {
    const row = oracle.lvs.find((r) => `${r['vg_name']}/${r['lv_name']}` === lv.volume);
    assert.equal(`${lv.size}B`, row?.['lv_size'], lv.volume);
  }
  const pvs = volumes.filter((v) => v.filesystem === 'LVM2 PV');
  assert.equal(pvs.length, 2, 'each disk is a whole-disk PV');
  assert.notEqual(pvs[0]?.disk, pvs[1]?.disk);
});

test('an ext4 inside an LVM logical volume is browsed by its vg/lv name', async () => {
  const { disks } = await buildLvmOneDisk();
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'lvm-one', ...disks], { env, timeoutMs: 180_000 }), 0);
  const volumes = await cofferJson<VolumeJson[]>(['files', '-r', repo, 'lvm-one:latest'], { env, timeoutMs: 180_000 });
  const root = volumes.find((v) => v.volume === 'coffer-one/root');
  assert.equal(root?.filesystem, 'ext4');
  assert.equal(root?.label, 'lv-root');
  const listing = await cofferJson<{ name: string; type: string }[]>(['files', '-r', repo, 'lvm-one:latest', 'ls', 'coffer-one/root:/'], { env, timeoutMs: 180_000 });
  assert.deepEqual(listing.map((e) => `${e.name}:${e.type}`), ['lost+found:directory']);
});
