/**
 * The host's UEFI firmware for booting a VM again, found as libvirt finds it: through QEMU's
 * firmware descriptors, never through file names guessed per distribution (Debian's
 * `/usr/share/OVMF/OVMF_CODE_4M.fd`, Fedora's `/usr/share/edk2/ovmf/OVMF_CODE.fd`…).
 *
 * Descriptor files (QEMU `docs/interop/firmware.json`, one JSON object per file, `*.json`) are
 * read from `/usr/share/qemu/firmware` (the distribution's), `/etc/qemu/firmware` (the
 * administrator's) and `$XDG_CONFIG_HOME/qemu/firmware` (default `~/.config/qemu/firmware`),
 * a file of one name in a later folder replacing the file of that name in an earlier one (an
 * empty file hides it); all are then taken in the order of their file names, and the first
 * that fits wins. The fields read:
 *
 * ```json
 * { "description": "UEFI firmware for x86_64, …",
 *   "interface-types": ["uefi"],
 *   "mapping": { "device": "flash", "mode": "split",           // mode: default "split"
 *                "executable": { "filename": "/…/OVMF_CODE_4M.fd", "format": "raw" },
 *                "nvram-template": { "filename": "/…/OVMF_VARS_4M.fd", "format": "raw" } },
 *   "targets": [ { "architecture": "x86_64", "machines": ["pc-i440fx-*", "pc-q35-*"] } ],
 *   "features": ["acpi-s3", "secure-boot", "enrolled-keys", "requires-smm", …] }
 * ```
 *
 * Fits: interface `uefi`, a split flash mapping (code and a variable store template), the
 * architecture, a machine glob matching the machine type (`q35` and `pc` are QEMU's aliases
 * of the newest `pc-q35-*` and `pc-i440fx-*`). A VM that booted with Secure Boot gets firmware
 * with `secure-boot` and `enrolled-keys`; any other VM firmware without `secure-boot` (whose
 * keys would refuse an unsigned boot loader the original accepted). A variable store of a
 * known size (the VM's own, backed up) takes firmware whose template has that size: a store
 * belongs to the build of the firmware that wrote it (2 MiB and 4 MiB OVMF builds differ).
 */
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A firmware found for a VM: the files for `-drive if=pflash` and what QEMU must give it. */
export interface UefiFirmware {
  /** The descriptor's own description, for reports. */
  description: string;
  /** The descriptor file it came from. */
  descriptor: string;
  code: { filename: string; format: string };
  varsTemplate: { filename: string; format: string };
  secureBoot: boolean;
  /** `-machine smm=on` and a secure flash (`-global driver=cfi.pflash01,property=secure,value=on`). */
  requiresSmm: boolean;
}

/** What the VM needs of its firmware. */
export interface UefiNeeds {
  /** QEMU machine type, e.g. `q35` or `pc-q35-7.2`. */
  machine: string;
  /** Default `x86_64`. */
  architecture?: string;
  /** The VM booted with Secure Boot. */
  secureBoot?: boolean;
  /** The size of the VM's own variable store, when there is one to boot with. */
  varsSize?: number;
}

/** The folders searched, in order of precedence (later replaces earlier). */
export function firmwareDescriptorFolders(env: NodeJS.ProcessEnv = process.env): string[] {
  const config = env['XDG_CONFIG_HOME'] !== undefined && env['XDG_CONFIG_HOME'] !== '' ? env['XDG_CONFIG_HOME'] : path.join(env['HOME'] ?? os.homedir(), '.config');
  return ['/usr/share/qemu/firmware', '/etc/qemu/firmware', path.join(config, 'qemu', 'firmware')];
}

/**
 * The first firmware of the descriptors in `folders` that fits `needs`, or why none does (a
 * sentence naming the folders and what is missing, for the boot check's reason).
 */
export async function findUefiFirmware(needs: UefiNeeds, folders: readonly string[] = firmwareDescriptorFolders()): Promise<UefiFirmware | { missing: string }> {
  const files = new Map<string, string>();
  for (const folder of folders) {
    const names = await fsp.readdir(folder).catch(() => [] as string[]);
    for (const name of names) if (name.endsWith('.json')) files.set(name, path.join(folder, name));
  }
  const machine = machineAlias(needs.machine);
  const architecture = needs.architecture ?? 'x86_64';
  let uefiSeen = 0;
  const rejected: string[] = [];
  for (const name of [...files.keys()].sort()) {
    const file = files.get(name) as string;
    const descriptor = await readDescriptor(file);
    if (descriptor === undefined || !descriptor.interfaces.includes('uefi')) continue;
    uefiSeen++;
    const firmware = fit(descriptor, file, architecture, machine, needs.secureBoot === true);
    if (typeof firmware === 'string') {
      rejected.push(`${name}: ${firmware}`);
      continue;
    }
    if (needs.varsSize !== undefined) {
      const size = (await fsp.stat(firmware.varsTemplate.filename).catch(() => undefined))?.size;
      if (size !== needs.varsSize) {
        rejected.push(`${name}: its variable store template is ${size === undefined ? 'missing' : `${size} bytes`}, the VM's is ${needs.varsSize}`);
        continue;
      }
    }
    if (!(await exists(firmware.code.filename)) || !(await exists(firmware.varsTemplate.filename))) {
      rejected.push(`${name}: ${firmware.code.filename} or ${firmware.varsTemplate.filename} is missing`);
      continue;
    }
    return firmware;
  }
  const wanted = `UEFI firmware for ${architecture} machine ${needs.machine}${needs.secureBoot === true ? ' with Secure Boot' : ''}`;
  if (uefiSeen === 0) {
    return { missing: `no ${wanted} on this host: no QEMU firmware descriptor for UEFI in ${folders.join(', ')} (install OVMF: Debian and Ubuntu package ovmf, RHEL and Fedora edk2-ovmf)` };
  }
  return { missing: `no ${wanted} on this host among the QEMU firmware descriptors in ${folders.join(', ')}: ${rejected.join('; ')}` };
}

interface Descriptor {
  description: string;
  interfaces: string[];
  mapping: Record<string, unknown>;
  targets: { architecture: string; machines: string[] }[];
  features: string[];
}

/** The descriptor in `file`; undefined for an empty (masking) or unreadable one. */
async function readDescriptor(file: string): Promise<Descriptor | undefined> {
  let json: unknown;
  try {
    const text = await fsp.readFile(file, 'utf8');
    if (text.trim() === '') return undefined;
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(json) || !isObject(json['mapping'])) return undefined;
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  const targets = (Array.isArray(json['targets']) ? json['targets'] : []).flatMap((t) =>
    isObject(t) && typeof t['architecture'] === 'string' ? [{ architecture: t['architecture'], machines: strings(t['machines']) }] : [],
  );
  return {
    description: typeof json['description'] === 'string' ? json['description'] : path.basename(file),
    interfaces: strings(json['interface-types']),
    mapping: json['mapping'],
    targets,
    features: strings(json['features']),
  };
}

/** The firmware of a UEFI descriptor for the VM, or why it does not fit. */
function fit(d: Descriptor, file: string, architecture: string, machine: string, secureBoot: boolean): UefiFirmware | string {
  const m = d.mapping;
  if (m['device'] !== 'flash') return `not a flash firmware (${String(m['device'])})`;
  if ((m['mode'] ?? 'split') !== 'split') return `flash mode ${String(m['mode'])}, not split`;
  const code = fileOf(m['executable']);
  const vars = fileOf(m['nvram-template']);
  if (code === undefined || vars === undefined) return 'no executable or variable store template';
  if (!d.targets.some((t) => t.architecture === architecture && t.machines.some((glob) => globMatches(glob, machine)))) return `not for ${architecture} ${machine}`;
  const hasSecureBoot = d.features.includes('secure-boot');
  if (secureBoot && !(hasSecureBoot && d.features.includes('enrolled-keys'))) return 'no Secure Boot with enrolled keys';
  if (!secureBoot && hasSecureBoot) return 'Secure Boot (the VM did not use it)';
  return { description: d.description, descriptor: file, code, varsTemplate: vars, secureBoot: hasSecureBoot, requiresSmm: d.features.includes('requires-smm') };
}

function fileOf(v: unknown): { filename: string; format: string } | undefined {
  if (!isObject(v) || typeof v['filename'] !== 'string' || !path.isAbsolute(v['filename'])) return undefined;
  const format = v['format'] ?? 'raw';
  return format === 'raw' || format === 'qcow2' ? { filename: v['filename'], format } : undefined;
}

/** QEMU's machine aliases, as a name the descriptors' globs match. */
function machineAlias(machine: string): string {
  if (machine === 'q35') return 'pc-q35-latest';
  if (machine === 'pc') return 'pc-i440fx-latest';
  return machine;
}

/** A descriptor machine glob (`*` any run, `?` one character) against a machine type. */
export function globMatches(glob: string, name: string): boolean {
  const pattern = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${pattern}$`).test(name);
}

async function exists(file: string): Promise<boolean> {
  return fsp.access(file).then(() => true, () => false);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
