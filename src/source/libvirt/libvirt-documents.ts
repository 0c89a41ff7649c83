/**
 * The libvirt XML documents live backup reads and writes, as libvirt 9.0 defines them
 * (docs/formatdomain.rst, formatcheckpoint.rst, formatbackup.rst; schemas in
 * /usr/share/libvirt/schemas/domainbackup.rng and domaincheckpoint.rng). Pure: text in,
 * typed values out, and the reverse; `virsh` is driven elsewhere.
 *
 * Read:
 * - domain (`virsh dumpxml`): `<domain><devices><disk type='file|block|network|volume'
 *   device='disk|cdrom|floppy|lun'><driver type='qcow2'/><source file|dev|name=…/>
 *   <target dev='vda'/><readonly/><shareable/><transient/></disk>` and the DAC label QEMU runs
 *   under, `<seclabel model='dac'><label>+UID:+GID</label></seclabel>` (absent without a
 *   DAC security driver, e.g. a session daemon).
 * - the domain's UEFI variable store (`virsh dumpxml`, live: libvirt fills it in at start when
 *   `<os firmware='efi'>` chose the firmware): `<os><nvram template='…'>PATH</nvram></os>`, or
 *   since libvirt 8.5 `<nvram type='file|block|network'><source file=…|dev=…|protocol=… name=…/>
 *   </nvram>`; a `format` attribute (libvirt 9.2: `raw`, `qcow2`) names the file's format.
 * - checkpoint (`virsh checkpoint-dumpxml --no-domain`): `<domaincheckpoint><name>…</name>
 *   <disks><disk name='vda' checkpoint='bitmap|no' bitmap='…'/></disks></domaincheckpoint>`.
 * - running backup job (`virsh backup-dumpxml`): `<domainbackup mode='pull'><server
 *   transport='unix' socket='…'/><disks><disk name='vda' backup='yes' backupmode='full|incremental'
 *   incremental='CP' exportname='vda' exportbitmap='backup-vda'>…</disk></disks></domainbackup>`.
 *   The export name is the disk's target; the bitmap context is `qemu:dirty-bitmap:<exportbitmap>`.
 * Written: the pull-mode backup request and the checkpoint definition (see the builders).
 * Quirk of the 9.0 schema: a pull-mode `<disk>` may carry `backup='yes'` only together with
 * `type='file'`; `<scratch file=…/>` is needed (without it QEMU 7.2 refuses the blockdev).
 */
import { attr, childElement, childElements, escapeXml, parseXml, textOf, type XmlElement } from '../../xml/index.js';

/** One `<disk>` of a domain. */
export interface LibvirtDisk {
  /** The target device (`vda`, `sdb`): the disk's name in the repository and in backup XML. */
  target: string;
  /** `disk`, `cdrom`, `floppy`, `lun`. */
  device: string;
  /** `file`, `block`, `network`, `volume`… */
  type: string;
  /** The image format (`qcow2`, `raw`), when the driver names one. */
  format?: string;
  /** The file, device, or network name, when there is a medium. */
  source?: string;
  /** Why the disk is not backed up (read-only, shareable, no medium, not a disk), if it is not. */
  skip?: string;
}

/** A `<domain>` document's disks, in document order. Throws on a document that is not a domain. */
export function parseDomainDisks(xml: string): LibvirtDisk[] {
  const domain = rootNamed(xml, 'domain');
  const devices = childElement(domain, 'devices');
  const disks: LibvirtDisk[] = [];
  for (const element of devices === undefined ? [] : childElements(devices, 'disk')) {
    const target = attr(childElement(element, 'target'), 'dev');
    if (target === undefined || !/^[A-Za-z0-9_.-]{1,64}$/.test(target)) throw new Error(`a <disk> has no usable <target dev=…> (${String(target)})`);
    const device = attr(element, 'device') ?? 'disk';
    const type = attr(element, 'type') ?? 'file';
    const format = attr(childElement(element, 'driver'), 'type');
    const sourceElement = childElement(element, 'source');
    const source = sourceElement === undefined ? undefined : attr(sourceElement, 'file') ?? attr(sourceElement, 'dev') ?? attr(sourceElement, 'name') ?? attr(sourceElement, 'volume');
    const skip =
      device !== 'disk'
        ? `a ${device}, not a disk`
        : source === undefined
          ? 'no medium'
          : childElement(element, 'readonly') !== undefined
            ? 'read-only'
            : childElement(element, 'shareable') !== undefined
              ? 'shareable (other VMs may write it: it has no instant of this VM)'
              : childElement(element, 'transient') !== undefined
                ? 'transient (its writes are dropped when the VM stops)'
                : undefined;
    disks.push({ target, device, type, ...(format !== undefined ? { format } : {}), ...(source !== undefined ? { source } : {}), ...(skip !== undefined ? { skip } : {}) });
  }
  const targets = new Set(disks.map((d) => d.target));
  if (targets.size !== disks.length) throw new Error('two disks share a target device');
  return disks;
}

/**
 * A domain's UEFI variable store: the file to read (`file`), or why it is not read (`skip`):
 * a network or block store, or one that is not a raw file.
 */
export type LibvirtNvram = { file: string } | { skip: string };

/** The `<os><nvram>` of a `<domain>` document, or undefined when it has none (BIOS, or a stateless UEFI loader). */
export function parseDomainNvram(xml: string): LibvirtNvram | undefined {
  const domain = rootNamed(xml, 'domain');
  const os = childElement(domain, 'os');
  const nvram = os === undefined ? undefined : childElement(os, 'nvram');
  if (nvram === undefined) return undefined;
  const type = attr(nvram, 'type') ?? 'file';
  const source = childElement(nvram, 'source');
  const file = source === undefined ? textOf(nvram).trim() : attr(source, 'file');
  if (type !== 'file') {
    const where = source === undefined ? undefined : attr(source, 'dev') ?? attr(source, 'name');
    return { skip: `the UEFI variable store is of type '${type}'${where === undefined ? '' : ` (${where})`}: only a file is read` };
  }
  if (file === undefined || file === '') return undefined;
  const format = attr(nvram, 'format') ?? 'raw';
  if (format !== 'raw') return { skip: `the UEFI variable store ${file} is a ${format} file: only a raw one is read` };
  return { file };
}

/** The numeric user and group QEMU runs as, from the domain's DAC label (`+64055:+64055`), if given. */
export function parseDacOwner(xml: string): { uid: number; gid: number } | undefined {
  const domain = rootNamed(xml, 'domain');
  for (const seclabel of childElements(domain, 'seclabel')) {
    if (attr(seclabel, 'model') !== 'dac') continue;
    const labelElement = childElement(seclabel, 'label');
    const label = labelElement === undefined ? '' : textOf(labelElement).trim();
    const match = /^\+?(\d{1,10}):\+?(\d{1,10})$/.exec(label);
    if (match !== null) return { uid: Number(match[1]), gid: Number(match[2]) };
  }
  return undefined;
}

/** The disks a checkpoint keeps a bitmap for (`checkpoint='bitmap'`), by target. */
export function parseCheckpointDisks(xml: string): Set<string> {
  const checkpoint = rootNamed(xml, 'domaincheckpoint');
  const disks = childElement(checkpoint, 'disks');
  const tracked = new Set<string>();
  for (const disk of disks === undefined ? [] : childElements(disks, 'disk')) {
    const name = attr(disk, 'name');
    if (name !== undefined && (attr(disk, 'checkpoint') ?? 'bitmap') === 'bitmap') tracked.add(name);
  }
  return tracked;
}

/** A running pull-mode backup job, as `backup-dumpxml` describes it. */
export interface BackupJob {
  /** The NBD server's unix socket (undefined for a TCP server or a push-mode job). */
  socket?: string;
  mode: string;
  disks: { name: string; exportName: string; exportBitmap?: string; backupMode?: string; incremental?: string }[];
}

/** Parses `virsh backup-dumpxml` output. */
export function parseBackupJob(xml: string): BackupJob {
  const backup = rootNamed(xml, 'domainbackup');
  const server = childElement(backup, 'server');
  const socket = attr(server, 'transport') === 'unix' ? attr(server, 'socket') : undefined;
  const disks: BackupJob['disks'] = [];
  const list = childElement(backup, 'disks');
  for (const disk of list === undefined ? [] : childElements(list, 'disk')) {
    const name = attr(disk, 'name');
    if (name === undefined || attr(disk, 'backup') === 'no') continue;
    const [exportBitmap, backupMode, incremental] = [attr(disk, 'exportbitmap'), attr(disk, 'backupmode'), attr(disk, 'incremental')];
    disks.push({
      name,
      exportName: attr(disk, 'exportname') ?? name,
      ...(exportBitmap !== undefined ? { exportBitmap } : {}),
      ...(backupMode !== undefined ? { backupMode } : {}),
      ...(incremental !== undefined ? { incremental } : {}),
    });
  }
  return { mode: attr(backup, 'mode') ?? 'push', ...(socket !== undefined ? { socket } : {}), disks };
}

/** One disk in a backup request: left out, read in full, or read as the changes since a checkpoint. */
export type BackupDiskRequest = { target: string; backup: false } | { target: string; backup: true; since?: string; scratch: string };

/**
 * `<domainbackup mode='pull'>` exporting over a unix socket. Each disk names its own mode
 * (`backupmode='incremental' incremental='CP'` or `backupmode='full'`), so one disk without a
 * usable checkpoint does not force the others to a full read.
 */
export function pullBackupXml(socket: string, disks: readonly BackupDiskRequest[]): string {
  const lines = [`<domainbackup mode='pull'>`, `  <server transport='unix' socket='${escapeXml(socket)}'/>`, '  <disks>'];
  for (const d of disks) {
    if (!d.backup) lines.push(`    <disk name='${escapeXml(d.target)}' backup='no'/>`);
    else {
      const mode = d.since === undefined ? `backupmode='full'` : `backupmode='incremental' incremental='${escapeXml(d.since)}'`;
      lines.push(`    <disk name='${escapeXml(d.target)}' ${mode} type='file'><scratch file='${escapeXml(d.scratch)}'/></disk>`);
    }
  }
  lines.push('  </disks>', '</domainbackup>', '');
  return lines.join('\n');
}

/** `<domaincheckpoint>` named `name`, with a bitmap for the `tracked` disks and none for the others. */
export function checkpointXml(name: string, disks: readonly { target: string; tracked: boolean }[]): string {
  const lines = ['<domaincheckpoint>', `  <name>${escapeXml(name)}</name>`, '  <disks>'];
  for (const d of disks) lines.push(`    <disk name='${escapeXml(d.target)}' checkpoint='${d.tracked ? 'bitmap' : 'no'}'/>`);
  lines.push('  </disks>', '</domaincheckpoint>', '');
  return lines.join('\n');
}

function rootNamed(xml: string, name: string): XmlElement {
  const { root } = parseXml(xml, { what: `libvirt's <${name}> XML`, code: 'E_LIBVIRT_ERROR' });
  if (root.name !== name) throw new Error(`expected a <${name}> document, got <${root.name}>`);
  return root;
}
