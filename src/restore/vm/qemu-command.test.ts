/**
 * The clone script from a QMP description: the shell (/bin/sh, the real one) runs it with a
 * stand-in `qemu-system-x86_64` on PATH that prints its arguments, so quoting, option
 * escaping and `"$@"` are checked as QEMU would receive them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { isCofferError } from '../../errors/index.js';
import { cloneQemuScript, type IdentitySource } from '../index.js';

const execFileAsync = promisify(execFile);
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coffer-qemu-script-'));
  await writeFile(join(dir, 'qemu-system-x86_64'), '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n');
  await chmod(join(dir, 'qemu-system-x86_64'), 0o755);
});
after(() => rm(dir, { recursive: true, force: true }));

const identity = (): IdentitySource => {
  let n = 0;
  return { uuid: () => '00000000-0000-4000-8000-000000000001', mac: () => `52:54:00:00:00:0${++n}` };
};

/** A description of the shape src/qmp/describe-vm.ts stores (QEMU 7.2), cut to what matters. */
const DESCRIPTION = {
  format: 'coffer.qmp-vm-description',
  version: 1,
  machineType: 'pc-i440fx-7.2-machine',
  arch: 'x86_64',
  name: 'db01',
  uuid: '11111111-2222-3333-4444-555555555555',
  devices: [
    { path: '/machine/peripheral/vd0', id: 'vd0', type: 'virtio-blk-pci', properties: { drive: 'sys', bootindex: 1, addr: 32, multifunction: false, parent_bus: '/machine/i440fx/pci.0', serial: 'SYS-1' } },
    { path: '/machine/peripheral/cd0', id: 'cd0', type: 'ide-cd', properties: { drive: 'iso', bootindex: -1, unit: 0, parent_bus: '/machine/unattached/device[4]/ide.1' } },
    { path: '/machine/peripheral/nic0', id: 'nic0', type: 'e1000', properties: { mac: '52:54:00:aa:bb:cc', netdev: 'hostnet0', addr: 24, multifunction: false, parent_bus: '/machine/i440fx/pci.0' } },
    { path: '/machine/peripheral/ch0', id: 'ch0', type: 'virtserialport', properties: { chardev: 'qga0', name: 'org.qemu.guest_agent.0' } },
    { path: '/machine/peripheral-anon/device[0]', type: 'virtio-net-pci', properties: { mac: '52:54:00:dd:ee:ff', netdev: 'hostnet1', parent_bus: '/machine/i440fx/pci.0' } },
  ],
  objects: [],
  queries: {
    'query-cpus-fast': [{ 'cpu-index': 0 }, { 'cpu-index': 1 }],
    'query-memory-size-summary': { 'base-memory': 1073741824 },
    'query-block': [
      { device: '', qdev: '/machine/peripheral/vd0/virtio-backend', inserted: { 'node-name': 'sys', ro: false } },
      { device: '', qdev: 'cd0', inserted: { 'node-name': 'iso', ro: true } },
    ],
  },
  network: 'nic0: index=0,type=nic,model=e1000,macaddr=52:54:00:aa:bb:cc\n \\ hostnet0: index=0,type=tap,ifname=tap0,script=/etc/qemu-ifup\n',
  missing: [],
};

async function argv(script: string, extra: string[]): Promise<string[]> {
  const file = join(dir, 'clone.sh');
  await writeFile(file, script, { mode: 0o755 });
  const { stdout } = await execFileAsync('/bin/sh', [file, ...extra], { env: { PATH: `${dir}:/usr/bin:/bin` } });
  return stdout.split('\n').slice(0, -1);
}

test('the script starts QEMU with the machine, the new identity, the restored disk and the NICs on user networking', async () => {
  const path = "/srv/restore/it's a disk, really.qcow2";
  const clone = cloneQemuScript(JSON.stringify(DESCRIPTION), { name: 'db02', disks: [{ name: 'sys', path, format: 'qcow2' }], identity: identity() });
  const args = await argv(clone.text, ['-display', 'none', '-serial', 'file:/tmp/a b.log']);
  assert.deepEqual(args, [
    '-machine', 'pc-i440fx-7.2',
    '-name', 'db02',
    '-uuid', '00000000-0000-4000-8000-000000000001',
    '-nodefaults',
    '-m', '1024M',
    '-smp', '2',
    '-blockdev', "driver=file,filename=/srv/restore/it's a disk,, really.qcow2,node-name=sys-file",
    '-blockdev', 'driver=qcow2,file=sys-file,node-name=sys',
    '-device', 'virtio-blk-pci,id=vd0,addr=0x4.0,serial=SYS-1,drive=sys,bootindex=1',
    '-device', 'ide-cd,id=cd0,unit=0',
    '-netdev', 'user,id=net0',
    '-device', 'e1000,id=nic0,addr=0x3.0,netdev=net0,mac=52:54:00:00:00:01',
    '-netdev', 'user,id=net1',
    '-device', 'virtio-net-pci,netdev=net1,mac=52:54:00:00:00:02',
    '-display', 'none', '-serial', 'file:/tmp/a b.log',
  ]);
  assert.deepEqual(clone.macs, [{ from: '52:54:00:aa:bb:cc', to: '52:54:00:00:00:01' }, { from: '52:54:00:dd:ee:ff', to: '52:54:00:00:00:02' }]);
  assert.deepEqual(clone.disks, [{ device: 'vd0', disk: 'sys', path }]);
  assert.match(clone.text, /#\s+\\ hostnet0: index=0,type=tap,ifname=tap0/, 'the original backend is quoted for the admin');
  assert.match(clone.text, /ch0 \(virtserialport\) used chardev qga0/);
  assert.match(clone.text, /cd0 \(ide-cd\) had drive iso, which is not in the backup/);
});

test('a disk the definition does not name is reported; a bad description is E_IMAGE_INVALID', () => {
  const clone = cloneQemuScript(JSON.stringify(DESCRIPTION), { name: 'x', disks: [{ name: 'sys', path: '/a', format: 'raw' }, { name: 'extra', path: '/b', format: 'raw' }], identity: identity() });
  assert.match(clone.notes.join('\n'), /restored disk extra matches no device/);
  for (const bad of ['', '[]', '{"format":"libvirt-xml"}', JSON.stringify({ ...DESCRIPTION, version: 2 }), JSON.stringify({ ...DESCRIPTION, machineType: 'pc; rm -rf /' })]) {
    assert.throws(() => cloneQemuScript(bad, { name: 'x', disks: [], identity: identity() }), (e) => isCofferError(e, 'E_IMAGE_INVALID'), bad);
  }
});

test('the original command line the backup found is quoted in the script, one option per line, and never run', async () => {
  const commandLine = {
    pid: 4242,
    argv: ['qemu-system-x86_64', '-accel', 'kvm', '-cpu', 'host,+vmx', '-name', 'db01', '-uuid', '8c2d4d9e-1d2b-4a43-9bb4-2b5a3f0e7c11', '-chardev', 'socket,id=qga0,path=/run/db01 qga.sock', '-object', 'secret,id=sec0,data=<redacted>', '-device', 'e1000,netdev=n0,mac=52:54:00:aa:bb:cc', '-nic', 'user,model=virtio,macaddr=52:54:00:dd:ee:ff',
      '-smbios', 'type=1,manufacturer=ACME,uuid=0f4e1b8a-3c2d-4e5f-8a9b-1c2d3e4f5a6b', '-device', '{"driver":"virtio-net-pci","netdev":"n1","mac":"52:54:00:11:22:33"}', '-device', '{"driver": "e1000", "netdev": "n2", "mac": "52:54:00:44:55:66"}', '-daemonize'],
  };
  const clone = cloneQemuScript(JSON.stringify({ ...DESCRIPTION, commandLine }), { name: 'db02', disks: [{ name: 'sys', path: '/a', format: 'raw' }], identity: identity() });
  const quoted = clone.text.split('\n').filter((l) => l.startsWith('#   ') && /qemu-system|^#   -/.test(l));
  assert.deepEqual(quoted, [
    '#   qemu-system-x86_64',
    '#   -accel kvm',
    '#   -cpu host,+vmx',
    '#   -name db01',
    "#   -uuid '<the original UUID>'",
    "#   -chardev 'socket,id=qga0,path=/run/db01 qga.sock'",
    "#   -object 'secret,id=sec0,data=<redacted>'",
    "#   -device 'e1000,netdev=n0,mac=<the original MAC>'",
    "#   -nic 'user,model=virtio,macaddr=<the original MAC>'",
    "#   -smbios 'type=1,manufacturer=ACME,uuid=<the original UUID>'",
    `#   -device '{"driver":"virtio-net-pci","netdev":"n1","mac":"<the original MAC>"}'`,
    `#   -device '{"driver": "e1000", "netdev": "n2", "mac": "<the original MAC>"}'`,
    '#   -daemonize',
  ]);
  assert.doesNotMatch(clone.text, /8c2d4d9e|0f4e1b8a|mac=52:54:00:aa:bb:cc|52:54:00:dd:ee:ff|52:54:00:11:22:33|52:54:00:44:55:66/, 'the original identity is not quoted');
  const args = await argv(clone.text, []);
  assert.ok(!args.includes('-accel') && !args.includes('-daemonize'), 'the quoted line is a comment only');
  // Without one (an older backup, a remote monitor), nothing is quoted.
  assert.doesNotMatch(cloneQemuScript(JSON.stringify(DESCRIPTION), { name: 'db02', disks: [], identity: identity() }).text, /original QEMU command line/);
});

test('a VM on UEFI: the firmware code and the restored variable store on the flash, SMM when the firmware needs it; without firmware a note says what to attach', async () => {
  const uefi = {
    ...DESCRIPTION,
    machineType: 'pc-q35-7.2-machine',
    queries: {
      ...DESCRIPTION.queries,
      'query-block': [
        { device: 'pflash0', qdev: '/machine/system.flash0', inserted: { 'node-name': '#block116', ro: true } },
        { device: 'pflash1', qdev: '/machine/system.flash1', inserted: { 'node-name': '#block346', ro: false } },
        ...DESCRIPTION.queries['query-block'],
      ],
    },
  };
  const disks = [{ name: 'sys', path: '/r/x-sys.qcow2', format: 'qcow2' }, { name: 'pflash1', path: '/r/x, vars.raw', format: 'raw' }];
  const secure = { code: { filename: '/fw/CODE.secboot.fd', format: 'raw' }, requiresSmm: true };
  const clone = cloneQemuScript(JSON.stringify(uefi), { name: 'x', disks, identity: identity(), firmware: secure });
  const args = await argv(clone.text, []);
  const after = (option: string, value: string): boolean => args.some((a, i) => a === option && args[i + 1] === value);
  assert.ok(after('-machine', 'smm=on') && after('-global', 'driver=cfi.pflash01,property=secure,value=on'), args.join(' '));
  assert.ok(after('-drive', 'if=pflash,unit=0,format=raw,file=/fw/CODE.secboot.fd,readonly=on'), args.join(' '));
  assert.ok(after('-drive', 'if=pflash,unit=1,format=raw,file=/r/x,, vars.raw'), 'a comma in a path doubled, as QEMU options take it');
  assert.deepEqual(clone.disks.map((d) => d.disk).sort(), ['pflash1', 'sys']);
  assert.deepEqual(clone.notes.filter((n) => /pflash|UEFI|matches no device/.test(n)), []);

  const none = cloneQemuScript(JSON.stringify(uefi), { name: 'x', disks, identity: identity(), firmware: { missing: 'no UEFI firmware for x86_64 machine pc-q35-7.2 on this host' } });
  assert.ok(!(await argv(none.text, [])).some((a) => a.includes('pflash')));
  assert.match(none.notes.join('\n'), /booted through UEFI firmware, which this script does not start \(no UEFI firmware for .*\): attach its restored variable store \/r\/x, vars\.raw as -drive if=pflash,unit=1/);
});
