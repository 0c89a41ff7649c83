/**
 * A stored QMP description of a VM (format `coffer.qmp-vm-description`, written by live QEMU
 * backups) turned into a runnable shell script that starts a clone: a new name, UUID and MAC
 * addresses, the same machine, memory, vCPUs and devices, every backed-up disk on its restored
 * image.
 *
 * The JSON read here (the parts of src/qmp/describe-vm.ts `VmDescription` version 1 that are
 * used, parsed locally because restore/ does not import qmp/; anything else is ignored):
 * ```
 * { "format": "coffer.qmp-vm-description", "version": 1,
 *   "machineType": "pc-q35-7.2-machine", "arch": "x86_64"?, "name": "web01"?, "uuid": "…"?,
 *   "devices": [{ "path": "/machine/peripheral/sda", "id": "sda"?, "type": "scsi-hd",
 *                 "properties": { "drive": "disk0", "bootindex": 1, "parent_bus": "/machine/peripheral/scsi0/scsi0.0",
 *                                 "mac": "52:54:00:…", "netdev": "n0", "addr": 16, "chardev": "", … } }],
 *   "queries": { "query-cpus-fast": [ … ], "query-memory-size-summary": { "base-memory": BYTES },
 *                "query-block": [{ "device": "", "qdev": "sda", "inserted": { "node-name": "disk0", "ro": false } }] },
 *   "network": "HMP info network text"? }
 * ```
 * Disks are matched to the snapshot's disks by the rule live backup names them with
 * (src/source/qemu/qemu-disks.ts): the guest device id, else the drive id, else the node name.
 *
 * A VM on UEFI (drives on the machine's flash devices `/machine/system.flash0|1`): the
 * restored variable store (the writable flash, backed up as a disk) goes back on flash unit
 * 1, and unit 0 takes the firmware code the caller found on this host for it
 * (uefi-firmware.ts; `firmware`), read-only; without one the script says so.
 *
 * What QMP cannot tell, so the script cannot reproduce (said in the script too): the CPU
 * model and flags, the accelerator, BIOS firmware, the display, devices
 * QEMU creates by default (VGA, serial ports: the script passes -nodefaults), every -netdev
 * backend (NICs get a `user` netdev; the original backend is quoted as a comment), chardev
 * backends (serial, guest agent channel), the options of -object (only ids and types are
 * stored), and disks that were not backed up (read-only drives such as CD-ROMs).
 */
import { CofferError } from '../../errors/index.js';
import { shellWord } from '../../names/index.js';
import type { IdentitySource } from './new-identity.js';
import type { RestoredDiskImage } from './libvirt-domain.js';

/** The stored definition format this module reads. */
export const QMP_DESCRIPTION_FORMAT = 'coffer.qmp-vm-description';

/** The clone's start script and what went into it. */
export interface QemuCloneScript {
  /** A POSIX shell script: `exec qemu-system-ARCH … "$@"`. */
  text: string;
  name: string;
  uuid: string;
  macs: { from: string | undefined; to: string }[];
  disks: { device: string; disk: string; path: string }[];
  notes: string[];
}

export interface Device {
  path: string;
  id: string | undefined;
  type: string;
  properties: Record<string, unknown>;
}

const MiB = 1024 * 1024;
/** A node name QEMU accepts (letters first, then letters, digits, '-', '_', '.'; at most 31). */
const NODE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,30}$/;

/** Builds the script. Pure; throws E_IMAGE_INVALID when the description lacks what is needed. */
/** UEFI firmware for the clone's script: the code file, and what it needs of QEMU. */
export interface CloneFirmware {
  code: { filename: string; format: string };
  requiresSmm: boolean;
}

export function cloneQemuScript(
  json: string,
  options: { name: string; disks: readonly RestoredDiskImage[]; identity: IdentitySource; firmware?: CloneFirmware | { missing: string } },
): QemuCloneScript {
  const d = parseDescription(json);
  const uuid = options.identity.uuid();
  const arch = d.arch ?? 'x86_64';
  const args: string[][] = [
    [`qemu-system-${arch}`],
    ['-machine', d.machineType.replace(/-machine$/, '')],
    ['-name', options.name],
    ['-uuid', uuid],
    ['-nodefaults'],
  ];
  if (d.memoryBytes !== undefined) args.push(['-m', `${Math.max(1, Math.round(d.memoryBytes / MiB))}M`]);
  if (d.cpus !== undefined) args.push(['-smp', String(d.cpus)]);

  const notes: string[] = [];
  const macs: QemuCloneScript['macs'] = [];
  const mapped: QemuCloneScript['disks'] = [];
  const comments: string[] = [];
  const unused = new Set(options.disks);
  const nodeOfDevice = diskNamesByDevice(d);
  const flash = flashArguments(d, options);
  args.push(...flash.args);
  notes.push(...flash.notes);
  for (const used of flash.disks) {
    unused.delete(used);
    mapped.push({ device: 'pflash1', disk: used.name, path: used.path });
  }
  let netdevs = 0;
  for (const device of orderParentsFirst(d.devices)) {
    const label = device.id ?? device.path;
    const p = device.properties;
    const opts: string[] = [device.type];
    if (device.id !== undefined) opts.push(`id=${device.id}`);
    const bus = busOption(p['parent_bus']);
    if (bus !== undefined) opts.push(`bus=${bus}`);
    if (typeof p['addr'] === 'number' && p['addr'] >= 0 && typeof p['multifunction'] === 'boolean') {
      opts.push(`addr=0x${(p['addr'] >> 3).toString(16)}.${p['addr'] & 7}`);
    }
    for (const key of ['scsi-id', 'lun', 'channel', 'unit'] as const) if (typeof p[key] === 'number' && p[key] >= 0) opts.push(`${key}=${p[key]}`);
    if (typeof p['serial'] === 'string' && p['serial'] !== '') opts.push(`serial=${p['serial']}`);
    if (typeof p['chardev'] === 'string' && p['chardev'] !== '') {
      comments.push(`device ${label} (${device.type}) used chardev ${p['chardev']}, whose backend QMP does not report: not re-created`);
      continue;
    }
    if (typeof p['drive'] === 'string' && p['drive'] !== '') {
      const diskName = nodeOfDevice.get(device.path);
      const restored = options.disks.find((r) => r.name === diskName) ?? options.disks.find((r) => r.name === device.id || r.name === p['drive']);
      if (restored === undefined) {
        comments.push(`device ${label} (${device.type}) had drive ${p['drive']}, which is not in the backup (read-only or removable): attached empty or left out`);
        if (!/-cd$|floppy/.test(device.type)) continue;
      } else {
        unused.delete(restored);
        const node = NODE_NAME.test(p['drive']) ? p['drive'] : `disk${mapped.length}`;
        args.push(['-blockdev', `driver=file,filename=${optionValue(restored.path)},node-name=${node}-file`]);
        args.push(['-blockdev', `driver=${restored.format},file=${node}-file,node-name=${node}`]);
        opts.push(`drive=${node}`);
        mapped.push({ device: label, disk: restored.name, path: restored.path });
      }
    }
    if (typeof p['bootindex'] === 'number' && p['bootindex'] >= 0) opts.push(`bootindex=${p['bootindex']}`);
    if (typeof p['netdev'] === 'string' || typeof p['mac'] === 'string') {
      const id = `net${netdevs++}`;
      const to = options.identity.mac();
      macs.push({ from: typeof p['mac'] === 'string' ? p['mac'] : undefined, to });
      args.push(['-netdev', `user,id=${id}`]);
      opts.push(`netdev=${id}`, `mac=${to}`);
    }
    args.push(['-device', opts.join(',')]);
  }
  for (const r of unused) notes.push(`restored disk ${r.name} matches no device of the definition: attach ${r.path} yourself`);
  notes.push(...comments);

  const lines = [
    '#!/bin/sh',
    `# Starts ${shellComment(options.name)}, a clone of ${shellComment(d.name ?? 'a VM')} restored by Coffer, with a new UUID and new MAC addresses.`,
    '# Add options at the end: ./SCRIPT -display none -serial file:console.log -accel kvm ...',
    '#',
    '# Not reproduced, because QMP does not report it (add what the VM needs):',
    '# the CPU model and flags (-cpu), the accelerator (-accel kvm), BIOS firmware (-bios),',
    '# the display and devices QEMU made by default (VGA, serial ports: this',
    '# script passes -nodefaults), chardev backends (serial, guest agent), -object options, disks',
    '# that were not backed up (CD-ROMs), and the network backends: every NIC gets a user-mode',
    '# netdev (-netdev user). The original network, as QEMU reported it:',
    ...(d.network ?? '(not reported)').trimEnd().split('\n').map((l) => `#   ${shellComment(l)}`),
    ...(d.commandLine === undefined
      ? []
      : ['#', '# The original QEMU command line (secrets redacted), for what the options above lack:', ...commandLineComment(d.commandLine)]),
    ...notes.map((n) => `# Note: ${shellComment(n)}`),
    'exec \\',
    ...args.map((a) => `  ${a.map(shellWord).join(' ')} \\`),
    '  "$@"',
    '',
  ];
  return { text: lines.join('\n'), name: options.name, uuid, macs, disks: mapped, notes };
}

export interface ParsedDescription {
  machineType: string;
  arch: string | undefined;
  name: string | undefined;
  memoryBytes: number | undefined;
  cpus: number | undefined;
  devices: Device[];
  blocks: { device: string; qdev: string | undefined; nodeName: string | undefined; readOnly: boolean }[];
  network: string | undefined;
  /** The original command line, when the backup found it (secrets redacted). */
  commandLine: string[] | undefined;
}

export function parseDescription(json: string): ParsedDescription {
  const bad = (why: string): CofferError => new CofferError('E_IMAGE_INVALID', `the stored QMP description of the VM ${why}`);
  let d: unknown;
  try {
    d = JSON.parse(json);
  } catch {
    throw bad('is not JSON');
  }
  if (!isObject(d) || d['format'] !== QMP_DESCRIPTION_FORMAT) throw bad(`is not a ${QMP_DESCRIPTION_FORMAT}`);
  if (d['version'] !== 1) throw bad(`has version ${String(d['version'])}, this Coffer reads version 1`);
  if (typeof d['machineType'] !== 'string' || !/^[A-Za-z0-9._-]+$/.test(d['machineType'])) throw bad('has no machine type');
  const arch = typeof d['arch'] === 'string' && /^[a-z0-9_]+$/.test(d['arch']) ? d['arch'] : undefined;
  const queries = isObject(d['queries']) ? d['queries'] : {};
  const memory = isObject(queries['query-memory-size-summary']) ? queries['query-memory-size-summary']['base-memory'] : undefined;
  const cpus = Array.isArray(queries['query-cpus-fast']) ? queries['query-cpus-fast'].length : undefined;
  const devices = (Array.isArray(d['devices']) ? d['devices'] : []).flatMap((x): Device[] => {
    if (!isObject(x) || typeof x['path'] !== 'string' || typeof x['type'] !== 'string' || !/^[A-Za-z0-9._-]+$/.test(x['type'])) return [];
    const id = typeof x['id'] === 'string' && /^[A-Za-z][A-Za-z0-9._-]*$/.test(x['id']) ? x['id'] : undefined;
    return [{ path: x['path'], id, type: x['type'], properties: isObject(x['properties']) ? x['properties'] : {} }];
  });
  const blocks = (Array.isArray(queries['query-block']) ? queries['query-block'] : []).flatMap((b) => {
    if (!isObject(b) || typeof b['device'] !== 'string') return [];
    const inserted = isObject(b['inserted']) ? b['inserted'] : undefined;
    return [{
      device: b['device'],
      qdev: typeof b['qdev'] === 'string' ? b['qdev'] : undefined,
      nodeName: typeof inserted?.['node-name'] === 'string' ? inserted['node-name'] : undefined,
      readOnly: inserted?.['ro'] === true,
    }];
  });
  return {
    machineType: d['machineType'],
    arch,
    name: typeof d['name'] === 'string' ? d['name'] : undefined,
    memoryBytes: typeof memory === 'number' && memory > 0 ? memory : undefined,
    cpus: cpus !== undefined && cpus > 0 ? cpus : undefined,
    devices,
    blocks,
    network: typeof d['network'] === 'string' ? d['network'] : undefined,
    commandLine: isObject(d['commandLine']) && Array.isArray(d['commandLine']['argv']) ? d['commandLine']['argv'].filter((a): a is string => typeof a === 'string') : undefined,
  };
}

/** The machine's flash devices: pflash0 the UEFI code, pflash1 the variable store. */
const FLASH_QDEV = /^\/machine\/system\.flash([01])$/;

/**
 * `-drive if=pflash` options for a VM on UEFI: the restored variable store on unit 1 (found
 * by the names live backup gives a drive) and the host's firmware code on unit 0; SMM and a
 * secure flash when the firmware requires them.
 */
function flashArguments(
  d: ParsedDescription,
  options: { disks: readonly RestoredDiskImage[]; firmware?: CloneFirmware | { missing: string } },
): { args: string[][]; notes: string[]; disks: RestoredDiskImage[] } {
  const flash = d.blocks.filter((b) => b.qdev !== undefined && FLASH_QDEV.test(b.qdev));
  if (flash.length === 0) return { args: [], notes: [], disks: [] };
  const varsBlock = flash.find((b) => !b.readOnly);
  const vars = varsBlock === undefined ? undefined : options.disks.find((r) => r.name === varsBlock.device || r.name === varsBlock.nodeName);
  const firmware = options.firmware;
  if (firmware === undefined || 'missing' in firmware) {
    const why = firmware === undefined ? 'no firmware was looked for' : firmware.missing;
    return { args: [], notes: [`the VM booted through UEFI firmware, which this script does not start (${why})${vars !== undefined ? `: attach its restored variable store ${vars.path} as -drive if=pflash,unit=1,format=${vars.format},file=… after the firmware code on unit 0` : ''}`], disks: [] };
  }
  const drive = (unit: number, file: string, format: string, extra = ''): string[] => ['-drive', `if=pflash,unit=${unit},format=${format},file=${optionValue(file)}${extra}`];
  const args: string[][] = [];
  if (firmware.requiresSmm) args.push(['-machine', 'smm=on'], ['-global', 'driver=cfi.pflash01,property=secure,value=on']);
  args.push(drive(0, firmware.code.filename, firmware.code.format, ',readonly=on'));
  if (vars === undefined) return { args, notes: ['the VM\'s UEFI variable store is not in the backup: add -drive if=pflash,unit=1,format=raw,file=… with a copy of the firmware\'s empty store'], disks: [] };
  args.push(drive(1, vars.path, vars.format));
  return { args, notes: [], disks: [vars] };
}

/**
 * Device QOM path → the snapshot disk name live backup gave its drive: query-block's `qdev`
 * is the device id or a QOM path (for virtio-blk, `/machine/peripheral/ID/virtio-backend`).
 */
function diskNamesByDevice(d: ParsedDescription): Map<string, string> {
  // The rule of listQemuDisks (src/source/qemu/qemu-disks.ts, with qmp's deviceIdOfQdev, which
  // restore may not import); a disk that kept an older name is found by the caller's fallback.
  const names = new Map<string, string>();
  for (const b of d.blocks) {
    if (b.nodeName === undefined) continue;
    const qdevId = deviceIdOf(b.qdev);
    const name = qdevId ?? (b.device !== '' ? b.device : b.nodeName);
    const device = d.devices.find((x) => (qdevId !== undefined && x.id === qdevId) || (b.qdev !== undefined && (b.qdev === x.path || b.qdev.startsWith(`${x.path}/`))));
    if (device) names.set(device.path, name);
  }
  return names;
}

/** The device id in a `qdev`: itself, or the ID of `/machine/peripheral/ID/…`; none for an anonymous device. */
function deviceIdOf(qdev: string | undefined): string | undefined {
  if (qdev === undefined || qdev === '') return undefined;
  return qdev.startsWith('/') ? /^\/machine\/peripheral\/([^/]+)(?:\/|$)/.exec(qdev)?.[1] : qdev;
}

/** `bus=` for a device on a bus of another user device (e.g. `scsi0.0`); none for the machine's own buses. */
function busOption(parentBus: unknown): string | undefined {
  if (typeof parentBus !== 'string' || !parentBus.startsWith('/machine/peripheral')) return undefined;
  const name = parentBus.slice(parentBus.lastIndexOf('/') + 1);
  return /^[A-Za-z0-9._-]+$/.test(name) ? name : undefined;
}

/** Controllers before the devices on their buses (a device's bus path starts with its controller's path). */
function orderParentsFirst(devices: Device[]): Device[] {
  const depth = (x: Device): number => {
    let n = 0;
    for (let bus = x.properties['parent_bus']; typeof bus === 'string' && n < devices.length; n++) {
      const parent = devices.find((p) => (bus as string).startsWith(`${p.path}/`));
      bus = parent?.properties['parent_bus'];
      if (parent === undefined) break;
    }
    return n;
  };
  return devices.map((x, i) => ({ x, i, depth: depth(x) })).sort((a, b) => a.depth - b.depth || a.i - b.i).map((e) => e.x);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value inside a QEMU option list: commas are doubled. */
function optionValue(value: string): string {
  return value.replace(/,/g, ',,');
}

/**
 * The command line as comment lines, one option with its value per line; the original's
 * identity masked, so that copying a line never clones it: its `-uuid` and any `uuid=` (the
 * SMBIOS system UUID, `-smbios type=1,uuid=…`), its NICs' `mac=` and `macaddr=` (`-nic`,
 * `-net nic`), in key=value and JSON forms.
 */
function commandLineComment(argv: readonly string[]): string[] {
  const lines: string[] = [];
  for (const [i, original] of argv.entries()) {
    const arg = argv[i - 1] === '-uuid' ? '<the original UUID>' : maskIdentity(original);
    const quoted = shellWord(arg);
    if (arg.startsWith('-') || lines.length === 0) lines.push(quoted);
    else lines[lines.length - 1] += ` ${quoted}`;
  }
  return lines.map((line) => `#   ${shellComment(line)}`);
}

/** An option's value with the MAC addresses and UUIDs in it masked. */
function maskIdentity(arg: string): string {
  return arg
    .replace(/(^|,)(mac|macaddr)=[^,]*/g, '$1$2=<the original MAC>')
    .replace(/(^|,)uuid=[^,]*/g, '$1uuid=<the original UUID>')
    .replace(/"(mac|macaddr)"(\s*):(\s*)"[^"]*"/g, '"$1"$2:$3"<the original MAC>"')
    .replace(/"uuid"(\s*):(\s*)"[^"]*"/g, '"uuid"$1:$2"<the original UUID>"');
}

/** Text safe on one comment line. */
function shellComment(text: string): string {
  return text.replace(/[\r\n\u0000-\u001f\u007f]/g, ' ');
}
