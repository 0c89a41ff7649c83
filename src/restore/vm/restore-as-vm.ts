/**
 * Restore as a new VM (a clone on demand): every disk of a snapshot restored into a folder as
 * `NAME-<disk>.<ext>`, and the VM's stored definition rewritten for the clone (new name, UUID
 * and MAC addresses, disks on the restored images) beside them:
 * - `libvirt-xml` → `NAME.xml`, for `virsh define` (libvirt-domain.ts); a domain on UEFI gets
 *   its restored variable store (the disk `nvram`, written raw) as its `<nvram>`;
 * - `coffer.qmp-vm-description` → `NAME.sh`, a QEMU command line (qemu-command.ts); a VM
 *   on UEFI gets this host's firmware for its restored variable store (written raw).
 * A snapshot without a definition (image backups) cannot be restored as a VM: E_USAGE, and
 * nothing is written. The definition is checked (parsed and rewritten) before any disk is
 * restored, and written last, atomically (tmp + rename).
 */
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { TARGET_EXTENSIONS, type TargetFormat } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import { makeFolders } from '../../native/index.js';
import type { Repository, Snapshot } from '../../repo/index.js';
import type { RestoreProgress } from '../restore-disk.js';
import { restoreSnapshot } from '../restore-snapshot.js';
import { SnapshotDisk } from '../snapshot-disk.js';
import { cloneLibvirtDomain, LIBVIRT_NVRAM_DISK, LIBVIRT_XML_FORMAT, type RestoredDiskImage } from './libvirt-domain.js';
import { randomIdentities, type IdentitySource } from './new-identity.js';
import { bootHints } from './boot-hints.js';
import { cloneQemuScript, QMP_DESCRIPTION_FORMAT } from './qemu-command.js';
import { findUefiFirmware } from './uefi-firmware.js';
import { deviceSecureBoot } from './uefi-vars.js';

/** Options of {@link restoreAsVm}. */
export interface RestoreAsVmOptions {
  /** The clone's name: letters, digits, `.`, `_`, `-`, at most 64, starting with a letter or digit. */
  name: string;
  /** The folder for the disks and the definition (created if missing). */
  to: string;
  /** Image format of the disks (default raw). */
  format?: TargetFormat;
  overwrite?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: RestoreProgress) => void;
  /** Default: random UUIDs and MACs. */
  identity?: IdentitySource;
  /** Where QEMU firmware descriptors are looked for, for a VM on UEFI (default: QEMU's folders, uefi-firmware.ts). */
  firmwareFolders?: readonly string[];
}

/** What {@link restoreAsVm} made. */
export interface RestoredVm {
  name: string;
  uuid: string;
  /** `libvirt-xml` or `qemu-script`. */
  kind: 'libvirt-xml' | 'qemu-script';
  /** The definition file written: `NAME.xml` or `NAME.sh`. */
  definitionPath: string;
  macs: { from: string | undefined; to: string }[];
  disks: { disk: string; path: string; bytes: number }[];
  notes: string[];
}

const CLONE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The disk driver name QEMU and libvirt give each format Coffer writes. */
const DRIVER_OF: Readonly<Record<TargetFormat, string>> = {
  raw: 'raw', qcow2: 'qcow2', vhd: 'vpc', 'vhd-fixed': 'vpc', vhdx: 'vhdx', vmdk: 'vmdk', 'vmdk-sparse': 'vmdk',
};

/** What the VM's backed-up variable store says of Secure Boot (uefi-vars.ts); undefined when it cannot tell. */
async function storeSecureBoot(repo: Repository, snapshot: Snapshot, disk: Snapshot['disks'][number]): Promise<boolean | undefined> {
  const device = new SnapshotDisk(repo, snapshot.id, disk);
  try {
    return await deviceSecureBoot(device);
  } finally {
    await device.close();
  }
}

/** Restores `snapshot` as a new VM named `options.name` in `options.to`. */
export async function restoreAsVm(repo: Repository, snapshot: Snapshot, options: RestoreAsVmOptions): Promise<RestoredVm> {
  if (!CLONE_NAME.test(options.name)) {
    throw new CofferError('E_USAGE', `--as-vm ${JSON.stringify(options.name)}: a VM name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  const definition = snapshot.definition;
  const short = snapshot.id.slice(0, 8);
  if (definition === null) {
    throw new CofferError('E_USAGE', `snapshot ${short} stores no VM definition (a backup of disk images): restore its disks with --to and define the VM yourself`, { subject: { snapshot: snapshot.id } });
  }
  if (definition.format !== LIBVIRT_XML_FORMAT && definition.format !== QMP_DESCRIPTION_FORMAT) {
    throw new CofferError('E_UNSUPPORTED_FORMAT', `snapshot ${short} stores a VM definition of format ${definition.format}, which this Coffer cannot turn into a new VM`, { subject: { snapshot: snapshot.id } });
  }
  const dir = resolve(options.to);
  const hints = bootHints(definition);
  // The VM's UEFI variable store is the firmware's flash, restored raw whatever the disks'
  // format: a flash must be exactly its size, which VHD and VMDK round up. A libvirt
  // domain's is always the disk nvram (no target is named so), UEFI or not.
  const varsDisk = definition.format === QMP_DESCRIPTION_FORMAT
    ? snapshot.disks.find((d) => hints.firmwareVars?.includes(d.name))
    : snapshot.disks.find((d) => d.name === LIBVIRT_NVRAM_DISK);
  const formatOf = (name: string): TargetFormat => (name === varsDisk?.name ? 'raw' : (options.format ?? 'raw'));
  const images: RestoredDiskImage[] = snapshot.disks.map((d) => ({
    name: d.name,
    path: join(dir, `${options.name}-${d.name.replace(/[^A-Za-z0-9._-]/g, '_')}.${TARGET_EXTENSIONS[formatOf(d.name)]}`),
    format: DRIVER_OF[formatOf(d.name)],
  }));
  const varsImage = images.find((i) => i.name === varsDisk?.name);
  const identity = options.identity ?? randomIdentities();
  const text = Buffer.from(definition.data, 'base64').toString('utf8');
  // A QEMU VM on UEFI: this host's firmware, with Secure Boot as the description says or (its
  // command line unknown) as the VM's store says. libvirt picks a domain's firmware itself.
  let firmware: Awaited<ReturnType<typeof findUefiFirmware>> | undefined;
  if (definition.format === QMP_DESCRIPTION_FORMAT && hints.uefi === true) {
    const secureBoot = hints.secureBoot ?? (varsDisk !== undefined ? await storeSecureBoot(repo, snapshot, varsDisk) : undefined);
    firmware = await findUefiFirmware({ machine: hints.machine ?? 'q35', secureBoot: secureBoot === true, ...(varsDisk !== undefined ? { varsSize: varsDisk.size } : {}) }, options.firmwareFolders);
  }
  const clone = definition.format === LIBVIRT_XML_FORMAT
    ? { kind: 'libvirt-xml' as const, file: `${options.name}.xml`, ...cloneLibvirtDomain(text, { name: options.name, disks: images.filter((i) => i !== varsImage), identity, ...(varsImage !== undefined ? { nvram: varsImage } : {}) }) }
    : { kind: 'qemu-script' as const, file: `${options.name}.sh`, ...cloneQemuScript(text, { name: options.name, disks: images, identity, ...(firmware !== undefined ? { firmware } : {}) }) };

  await makeFolders(dir);
  const definitionPath = join(dir, clone.file);
  if (options.overwrite !== true && (await stat(definitionPath).catch(() => undefined)) !== undefined) {
    throw new CofferError('E_TARGET_UNWRITABLE', `${definitionPath} exists (add --overwrite to replace it)`, { subject: { path: definitionPath } });
  }
  const disks: RestoredVm['disks'] = [];
  for (const image of images) {
    const [result] = await restoreSnapshot(repo, snapshot, {
      disk: image.name,
      to: image.path,
      format: formatOf(image.name),
      overwrite: options.overwrite ?? false,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    disks.push({ disk: image.name, path: image.path, bytes: result?.progress.bytesTotal ?? 0 });
  }
  const tmp = `${definitionPath}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, clone.text, { mode: clone.kind === 'qemu-script' ? 0o755 : 0o644 });
    await rename(tmp, definitionPath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new CofferError('E_TARGET_UNWRITABLE', `cannot write ${definitionPath}: ${(err as Error).message}`, { subject: { path: definitionPath }, cause: err });
  }
  return { name: clone.name, uuid: clone.uuid, kind: clone.kind, definitionPath, macs: clone.macs, disks, notes: clone.notes };
}
