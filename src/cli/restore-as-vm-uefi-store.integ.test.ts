/**
 * `coffer restore --as-vm` of a QEMU VM on UEFI whose command line the backup did not find
 * (a VM started by another user, or whose /proc entry was gone): the description names the
 * flash drives but not whether the flash was secure, so Secure Boot is read from the VM's
 * own backed-up variable store (restore/vm/uefi-vars.ts). The clone's script gets the
 * host's Secure Boot firmware (SMM, secure flash) for a store with keys enrolled and Secure
 * Boot on, the plain build for an empty store, and the plain build when the store is not one
 * the reader can make sense of. The stores are Debian's own (package ovmf); the firmware is
 * found through the host's QEMU descriptors, as in production.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../backup/index.js';
import { LocalBackend, openRepository } from '../repo/index.js';
import { openImageSource } from '../source/index.js';
import { assertExit, coffer, cofferJson, makeWorkDir, removeDir } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'as-vm uefi' };
/** Debian's OVMF: the plain build and the Secure Boot build with Microsoft's keys enrolled (descriptors 60-… and 40-…). */
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const OVMF_MS_CODE = '/usr/share/OVMF/OVMF_CODE_4M.ms.fd';
const OVMF_MS_VARS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';
let work: string;
let repo: string;

before(async () => {
  await readFile(OVMF_MS_VARS); // .ci/run installs ovmf
  work = await makeWorkDir('as-vm-uefi-store');
  repo = join(work, 'repo');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
});
after(() => removeDir(work));

/** What `src/qmp/describe-vm.ts` stores for a q35 VM on split UEFI flash, without its command line. */
function descriptionWithoutCommandLine(): Buffer {
  return Buffer.from(JSON.stringify({
    format: 'coffer.qmp-vm-description',
    version: 1,
    machineType: 'pc-q35-7.2-machine',
    arch: 'x86_64',
    name: 'efi01',
    uuid: '11111111-2222-3333-4444-555555555555',
    devices: [{ path: '/machine/peripheral/vd0', id: 'vd0', type: 'virtio-blk-pci', properties: { drive: 'disk0', bootindex: 1 }, unreadable: [] }],
    queries: {
      'query-block': [
        { device: 'pflash0', qdev: '/machine/system.flash0', inserted: { 'node-name': '#block116', ro: true, file: OVMF_CODE } },
        { device: 'pflash1', qdev: '/machine/system.flash1', inserted: { 'node-name': '#block346', ro: false } },
        { device: '', qdev: '/machine/peripheral/vd0/virtio-backend', inserted: { 'node-name': 'disk0', ro: false } },
      ],
    },
  }));
}

/** Backs up VM `vm`: a small system disk and `store` as its flash variable store `pflash1`. */
async function backUpWithStore(vm: string, store: string): Promise<void> {
  const disk = join(work, `${vm}-disk0.raw`);
  await writeFile(disk, Buffer.alloc(1 << 20, 0x5a));
  const repository = await openRepository(new LocalBackend(repo), { passphrase: env.COFFER_PASSWORD, threads: 1 });
  try {
    const images = await openImageSource(vm, [disk, store]);
    try {
      const names = ['disk0', 'pflash1'];
      await backupVm(repository, { ...images, vm, disks: images.disks.map((d, i) => ({ ...d, name: names[i] as string })), definition: { format: 'coffer.qmp-vm-description', data: descriptionWithoutCommandLine() } });
    } finally {
      await images.close();
    }
  } finally {
    await repository.close();
  }
}

interface AsVmJson {
  vm: { kind: string; definition: string; disks: { disk: string; path: string }[]; notes: string[] };
}

async function cloneScript(vm: string): Promise<{ script: string; result: AsVmJson }> {
  const result = await cofferJson<AsVmJson>(['restore', '-r', repo, `${vm}:latest`, '--as-vm', `${vm}-clone`, '--to', join(work, vm), '--format', 'qcow2'], { env });
  assert.equal(result.vm.kind, 'qemu-script');
  return { script: await readFile(result.vm.definition, 'utf8'), result };
}

test('a store with Secure Boot on and keys enrolled: the clone gets the Secure Boot firmware, SMM and the secure flash, and its store restored raw on unit 1', async () => {
  const store = join(work, 'ms-vars.fd');
  await copyFile(OVMF_MS_VARS, store);
  await backUpWithStore('sb-on', store);
  const { script, result } = await cloneScript('sb-on');
  assert.ok(script.includes(OVMF_MS_CODE), `the Secure Boot build:\n${script}`);
  assert.match(script, /smm=on/);
  assert.match(script, /cfi\.pflash01,property=secure,value=on/);
  const restored = result.vm.disks.find((d) => d.disk === 'pflash1');
  assert.ok(restored !== undefined && restored.path.endsWith('.raw'), 'the store is restored raw whatever --format says');
  assert.ok((await readFile(restored.path)).equals(await readFile(OVMF_MS_VARS)), 'the store is the VM\'s own, byte for byte');
  assert.ok(script.includes(restored.path), 'the script puts the restored store on the flash');
});

test('an empty store (no keys): the plain firmware, no SMM; a store the reader cannot parse: the plain firmware too', async () => {
  const empty = join(work, 'vars.fd');
  await copyFile(OVMF_VARS, empty);
  await backUpWithStore('sb-off', empty);
  const plain = (await cloneScript('sb-off')).script;
  assert.ok(plain.includes(OVMF_CODE) && !plain.includes(OVMF_MS_CODE), `the plain build:\n${plain}`);
  assert.doesNotMatch(plain, /smm=on|property=secure/);

  // The size of a 4 MiB build's store, but nothing in it is a firmware volume.
  const garbage = join(work, 'garbage.fd');
  await writeFile(garbage, Buffer.alloc((await readFile(OVMF_VARS)).length, 0xa5));
  await backUpWithStore('sb-unknown', garbage);
  const unknown = (await cloneScript('sb-unknown')).script;
  assert.ok(unknown.includes(OVMF_CODE) && !unknown.includes(OVMF_MS_CODE), `the plain build:\n${unknown}`);
});
