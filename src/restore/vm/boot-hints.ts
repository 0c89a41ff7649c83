import { CofferError } from '../../errors/index.js';
import { attr, childElement, childElements, parseXml, textOf } from '../../xml/index.js';
import { LIBVIRT_NVRAM_DISK, LIBVIRT_XML_FORMAT } from './libvirt-domain.js';
import { parseDescription, QMP_DESCRIPTION_FORMAT } from './qemu-command.js';

/** How the VM of a snapshot was set up, as far as booting it again needs to know. */
export interface BootHints {
  /** QEMU machine type, e.g. `pc-q35-7.2` or `pc-i440fx-7.2`. */
  machine?: string;
  memoryMiB?: number;
  /** How its first disk was attached. */
  bus?: 'virtio' | 'sata' | 'ide' | 'scsi';
  /** The VM booted through UEFI firmware. */
  uefi?: boolean;
  /**
   * UEFI: it booted with Secure Boot (true), without (false), or the definition leaves it to
   * what the firmware was given (undefined: libvirt's `firmware='efi'` picks Secure Boot
   * firmware when the host has it; a QEMU VM whose command line is unknown): then the VM's
   * variable store tells (uefi-vars.ts).
   */
  secureBoot?: boolean;
  /**
   * The VM's UEFI variable store, which live backup stored as a disk: the names that disk may
   * have (a live QEMU VM's writable `pflash1`: the drive id, the node name; a libvirt domain's
   * `<nvram>` file: `nvram`). It is the firmware's, not a disk of the guest. A snapshot made
   * before live backup stored it has no disk of these names.
   */
  firmwareVars?: string[];
}

/**
 * Reads the boot-relevant settings from a snapshot's stored definition: a libvirt domain XML
 * (`<os><type machine=…>`, `<memory>`, the first disk's `<target bus=…>`, `firmware='efi'` or
 * a `<loader>`, Secure Boot as `<loader secure='yes'>` or a `secure-boot` firmware feature,
 * the variable store as the disk `nvram` unless the loader keeps none: `stateless='yes'`, `type='rom'`),
 * or a QMP description (machine type, base memory, the first disk's device type; UEFI when
 * the machine's flash devices `/machine/system.flash0|1` hold drives, Secure Boot when the
 * command line made the flash secure, not when it is known and did not). Nothing for other definitions, or what a definition does not say. Never throws for a
 * definition it cannot read: booting then uses the defaults.
 */
export function bootHints(definition: { format: string; data: string } | null): BootHints {
  if (definition === null) return {};
  try {
    const text = Buffer.from(definition.data, 'base64').toString('utf8');
    if (definition.format === LIBVIRT_XML_FORMAT) return libvirtHints(text);
    if (definition.format === QMP_DESCRIPTION_FORMAT) return qmpHints(text);
  } catch (error) {
    if (!(error instanceof CofferError)) throw error;
  }
  return {};
}

function libvirtHints(xml: string): BootHints {
  const domain = parseXml(xml, { what: 'the stored libvirt domain XML', code: 'E_IMAGE_INVALID' }).root;
  const hints: BootHints = {};
  const os = childElement(domain, 'os');
  const machine = os === undefined ? undefined : attr(childElement(os, 'type'), 'machine');
  if (machine !== undefined && /^[A-Za-z0-9._-]+$/.test(machine)) hints.machine = machine;
  const loader = os === undefined ? undefined : childElement(os, 'loader');
  if (os !== undefined && (attr(os, 'firmware') === 'efi' || loader !== undefined)) hints.uefi = true;
  const firmware = os === undefined ? undefined : childElement(os, 'firmware');
  const features = firmware === undefined ? [] : childElements(firmware, 'feature');
  const secureFeature = attr(features.find((f) => attr(f, 'name') === 'secure-boot'), 'enabled');
  if (hints.uefi === true) {
    // An explicit loader is not secure unless it says so (libvirt's default); firmware='efi'
    // alone leaves the choice to libvirt's firmware selection.
    if (attr(loader, 'secure') === 'yes' || secureFeature === 'yes') hints.secureBoot = true;
    else if (attr(loader, 'secure') === 'no' || secureFeature === 'no' || (loader !== undefined && textOf(loader).trim() !== '')) hints.secureBoot = false;
  }
  // The stored (inactive) XML of `firmware='efi'` names no <nvram>: libvirt adds one when the domain starts.
  if (hints.uefi === true && attr(loader, 'stateless') !== 'yes' && attr(loader, 'type') !== 'rom') hints.firmwareVars = [LIBVIRT_NVRAM_DISK];
  const memory = childElement(domain, 'memory');
  if (memory !== undefined) {
    const value = Number(textOf(memory).trim());
    const unit = (attr(memory, 'unit') ?? 'KiB').toLowerCase();
    const factor: Record<string, number> = { b: 1 / 1048576, bytes: 1 / 1048576, k: 1 / 1024, kib: 1 / 1024, m: 1, mib: 1, g: 1024, gib: 1024 };
    if (Number.isFinite(value) && value > 0 && factor[unit] !== undefined) hints.memoryMiB = Math.max(16, Math.round(value * (factor[unit] as number)));
  }
  const devices = childElement(domain, 'devices');
  const disk = devices === undefined ? undefined : childElements(devices, 'disk').find((d) => (attr(d, 'device') ?? 'disk') === 'disk');
  const bus = disk === undefined ? undefined : attr(childElement(disk, 'target'), 'bus');
  if (bus === 'virtio' || bus === 'sata' || bus === 'ide' || bus === 'scsi') hints.bus = bus;
  return hints;
}

function qmpHints(json: string): BootHints {
  const d = parseDescription(json);
  const hints: BootHints = {};
  const machine = d.machineType.replace(/-machine$/, '');
  if (/^(pc|q35|pc-q35-[0-9.]+|pc-i440fx-[0-9.]+)$/.test(machine)) hints.machine = machine;
  if (d.memoryBytes !== undefined) hints.memoryMiB = Math.max(16, Math.round(d.memoryBytes / 1048576));
  const flash = d.blocks.filter((b) => b.qdev !== undefined && /^\/machine\/system\.flash[01]$/.test(b.qdev));
  if (flash.length > 0) {
    hints.uefi = true;
    const vars = flash.find((b) => !b.readOnly);
    if (vars !== undefined) hints.firmwareVars = [vars.device, vars.nodeName].filter((n): n is string => n !== undefined && n !== '');
    // Secure Boot firmware needs SMM and a secure flash: a known command line says which; else the store tells.
    if (d.commandLine !== undefined) hints.secureBoot = d.commandLine.some((a) => /cfi\.pflash01,property=secure,value=on/.test(a));
  }
  const types = new Set(d.devices.map((x) => x.type));
  if (types.has('virtio-blk-pci') || types.has('virtio-blk')) hints.bus = 'virtio';
  else if (types.has('scsi-hd')) hints.bus = 'scsi';
  else if (types.has('ide-hd')) hints.bus = machine.includes('q35') ? 'sata' : 'ide';
  return hints;
}
