/**
 * findUefiFirmware over QEMU firmware descriptors: crafted folders for the rules (precedence
 * and masking between folders, file-name order, machine globs and aliases, Secure Boot both
 * ways, the variable store's size, a clear reason when nothing fits), and this host's own
 * descriptors (Debian's ovmf package, which .ci/run installs).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { tempFolders } from '../../testing/index.js';
import { findUefiFirmware, globMatches, type UefiFirmware } from './uefi-firmware.js';

const tempFolder = tempFolders();

interface Made {
  folders: string[];
  file: (name: string) => string;
}

/** Descriptor folders (a distribution's and an administrator's) with firmware files of the given sizes. */
async function folders(): Promise<Made & { describe(folder: number, name: string, d: object | string): Promise<void>; firmware(name: string, bytes: number): Promise<string> }> {
  const root = await tempFolder('coffer-firmware');
  const made = [path.join(root, 'usr-share'), path.join(root, 'etc'), path.join(root, 'files')];
  for (const f of made) await fs.mkdir(f);
  return {
    folders: made.slice(0, 2),
    file: (name) => path.join(made[2] as string, name),
    describe: (folder, name, d) => fs.writeFile(path.join(made[folder] as string, name), typeof d === 'string' ? d : JSON.stringify(d)),
    firmware: async (name, bytes) => {
      const file = path.join(made[2] as string, name);
      await fs.writeFile(file, Buffer.alloc(bytes));
      return file;
    },
  };
}

function descriptor(code: string, vars: string, features: string[], machines = ['pc-i440fx-*', 'pc-q35-*']): object {
  return {
    description: `test firmware ${path.basename(code)}`,
    'interface-types': ['uefi'],
    mapping: { device: 'flash', executable: { filename: code, format: 'raw' }, 'nvram-template': { filename: vars, format: 'raw' } },
    targets: [{ architecture: 'x86_64', machines }],
    features,
  };
}

const codeOf = (f: UefiFirmware | { missing: string }): string => {
  assert.ok(!('missing' in f), 'missing' in f ? f.missing : '');
  return path.basename(f.code.filename);
};

test('the first descriptor by file name that fits: Secure Boot only when the VM used it, the store\'s size, q35 and pc as aliases', async () => {
  const h = await folders();
  const code = await h.firmware('CODE.fd', 4096);
  const secureCode = await h.firmware('CODE.secboot.fd', 4096);
  const vars4m = await h.firmware('VARS_4M.fd', 540672);
  const vars2m = await h.firmware('VARS.fd', 131072);
  const msVars = await h.firmware('VARS.ms.fd', 540672);
  await h.describe(0, '40-secure-enrolled.json', descriptor(secureCode, msVars, ['secure-boot', 'enrolled-keys', 'requires-smm'], ['pc-q35-*']));
  await h.describe(0, '50-secure-empty.json', descriptor(secureCode, vars4m, ['secure-boot', 'requires-smm'], ['pc-q35-*']));
  await h.describe(0, '60-plain-4m.json', descriptor(code, vars4m, ['acpi-s3']));
  await h.describe(0, '70-plain-2m.json', descriptor(code, vars2m, []));
  await h.describe(0, '80-bios.json', { 'interface-types': ['bios'], mapping: { device: 'memory', filename: '/x' }, targets: [] });

  const plain = await findUefiFirmware({ machine: 'q35' }, h.folders);
  assert.ok(!('missing' in plain));
  assert.deepEqual([path.basename(plain.varsTemplate.filename), plain.secureBoot, plain.requiresSmm], ['VARS_4M.fd', false, false]);
  assert.equal(codeOf(await findUefiFirmware({ machine: 'pc' }, h.folders)), 'CODE.fd');
  const secure = await findUefiFirmware({ machine: 'pc-q35-7.2', secureBoot: true }, h.folders);
  assert.ok(!('missing' in secure));
  assert.deepEqual([path.basename(secure.varsTemplate.filename), secure.secureBoot, secure.requiresSmm], ['VARS.ms.fd', true, true]);
  const small = await findUefiFirmware({ machine: 'pc-i440fx-7.2', varsSize: 131072 }, h.folders);
  assert.ok(!('missing' in small));
  assert.equal(path.basename(small.varsTemplate.filename), 'VARS.fd', 'the store of a 2 MiB build takes the 2 MiB firmware');

  const none = await findUefiFirmware({ machine: 'pc-i440fx-7.2', secureBoot: true }, h.folders);
  assert.ok('missing' in none);
  assert.match(none.missing, /no UEFI firmware for x86_64 machine pc-i440fx-7.2 with Secure Boot/);
  assert.match(none.missing, /40-secure-enrolled\.json: not for x86_64 pc-i440fx-7\.2/);
  assert.match(none.missing, /60-plain-4m\.json: Secure Boot|60-plain-4m\.json: no Secure Boot with enrolled keys/);
  const oddSize = await findUefiFirmware({ machine: 'q35', varsSize: 12345 }, h.folders);
  assert.ok('missing' in oddSize);
  assert.match(oddSize.missing, /its variable store template is 540672 bytes, the VM's is 12345/);
});

test('a later folder replaces a descriptor of the same name, an empty file hides it; a missing firmware file is skipped; no descriptor at all names the package', async () => {
  const h = await folders();
  const code = await h.firmware('CODE.fd', 4096);
  const vars = await h.firmware('VARS.fd', 4096);
  const other = await h.firmware('OTHER_CODE.fd', 4096);
  await h.describe(0, '50-a.json', descriptor(code, vars, []));
  await h.describe(0, '60-b.json', descriptor(other, vars, []));
  assert.equal(codeOf(await findUefiFirmware({ machine: 'q35' }, h.folders)), 'CODE.fd');
  await h.describe(1, '50-a.json', descriptor(other, vars, []));
  assert.equal(codeOf(await findUefiFirmware({ machine: 'q35' }, h.folders)), 'OTHER_CODE.fd', '/etc replaces /usr/share');
  await h.describe(1, '50-a.json', '');
  await h.describe(0, '40-gone.json', descriptor(h.file('GONE.fd'), vars, []));
  await h.describe(0, '45-broken.json', '{ not json');
  assert.equal(codeOf(await findUefiFirmware({ machine: 'q35' }, h.folders)), 'OTHER_CODE.fd', 'masked, missing and broken ones skipped');

  const empty = await folders();
  const missing = await findUefiFirmware({ machine: 'q35' }, empty.folders);
  assert.ok('missing' in missing);
  assert.match(missing.missing, /no QEMU firmware descriptor for UEFI in .*install OVMF: Debian and Ubuntu package ovmf, RHEL and Fedora edk2-ovmf/);
});

test('machine globs', () => {
  assert.ok(globMatches('pc-q35-*', 'pc-q35-7.2'));
  assert.ok(globMatches('pc-i440fx-?.?', 'pc-i440fx-7.2'));
  assert.ok(!globMatches('pc-q35-*', 'pc-i440fx-7.2'));
  assert.ok(!globMatches('pc-q35-7.2', 'pc-q35-7x2'), 'a dot is a dot');
});

test('this host: Debian\'s OVMF through its own descriptors, without and with Secure Boot', async () => {
  const plain = await findUefiFirmware({ machine: 'pc-q35-7.2' });
  assert.ok(!('missing' in plain), 'missing' in plain ? plain.missing : '');
  assert.deepEqual([plain.secureBoot, plain.requiresSmm], [false, false]);
  await fs.access(plain.code.filename);
  const secure = await findUefiFirmware({ machine: 'q35', secureBoot: true });
  assert.ok(!('missing' in secure), 'missing' in secure ? secure.missing : '');
  assert.deepEqual([secure.secureBoot, secure.requiresSmm], [true, true]);
});
