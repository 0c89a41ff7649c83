import type { BlockDevice } from '../../blockdev/index.js';
import { listVolumes } from '../../volume/index.js';
import type { BootHints } from '../vm/boot-hints.js';
import { findUefiFirmware, type UefiFirmware } from '../vm/uefi-firmware.js';
import { deviceSecureBoot } from '../vm/uefi-vars.js';

/** The firmware a boot check starts the VM with: `auto` decides from the snapshot. */
export type BootFirmwareChoice = 'auto' | 'bios' | 'uefi';
export const BOOT_FIRMWARES: readonly BootFirmwareChoice[] = ['auto', 'bios', 'uefi'];

/** How the VM will boot, and why. */
export type FirmwarePlan =
  | { kind: 'bios'; why: string }
  | {
      kind: 'uefi';
      why: string;
      firmware: UefiFirmware;
      /** The snapshot disk holding the VM's own UEFI variable store (a live QEMU VM's pflash1, a libvirt domain's nvram), attached as the firmware's, not as a disk. */
      varsDisk?: string;
    }
  | { kind: 'uefi'; why: string; missing: string };

/** GPT partition type of an EFI System Partition, and the MBR type of one. */
const ESP_DESCRIPTION = 'EFI System';
/** Bytes of an MBR's boot code (the disk signature and partition table follow). */
const MBR_BOOT_CODE = 440;

/**
 * Decides the firmware: `choice` when given; else the VM's stored definition (a libvirt
 * domain with `firmware='efi'` or a `<loader>`, a live QEMU VM with flash drives); else the
 * first disk: UEFI when it has an EFI System Partition and no MBR boot code (a disk a BIOS
 * cannot start: the BIOS runs those 440 bytes), BIOS otherwise (a disk with both, a hybrid,
 * boots either way). For UEFI, the host's firmware from QEMU's descriptors (uefi-firmware.ts),
 * the one whose variable store fits the VM's own when the backup holds it, with Secure Boot as
 * the definition says or, when it leaves that open, as that store says (uefi-vars.ts).
 */
export async function planFirmware(
  choice: BootFirmwareChoice,
  hints: BootHints,
  disks: readonly { name: string; device: BlockDevice }[],
  machine: string,
  folders?: readonly string[],
): Promise<FirmwarePlan> {
  const varsDisk = disks.find((d) => hints.firmwareVars?.includes(d.name));
  let why: string;
  if (choice === 'bios') return { kind: 'bios', why: 'asked (--boot-firmware bios)' };
  if (choice === 'uefi') why = 'asked (--boot-firmware uefi)';
  else if (hints.uefi === true) why = varsDisk !== undefined ? 'the VM\'s definition, with its UEFI variable store from the backup' : 'the VM\'s definition';
  else {
    const first = disks.find((d) => d !== varsDisk);
    if (first === undefined || !(await uefiOnlyDisk(first.device))) return { kind: 'bios', why: 'the first disk has MBR boot code or no EFI System Partition' };
    why = 'the first disk has an EFI System Partition and no MBR boot code';
  }
  let secureBoot = hints.secureBoot;
  if (secureBoot === undefined && varsDisk !== undefined) {
    secureBoot = await deviceSecureBoot(varsDisk.device);
    if (secureBoot === true) why += '; Secure Boot, as its variable store has keys enrolled';
  }
  const needs = { machine, secureBoot: secureBoot === true, ...(varsDisk !== undefined ? { varsSize: varsDisk.device.size } : {}) };
  let firmware = await findUefiFirmware(needs, folders);
  let varsFromBackup = varsDisk !== undefined;
  if ('missing' in firmware && varsDisk !== undefined) {
    // No firmware of the build that wrote the VM's store: boot with an empty store (boot
    // entries are then found on the disk's removable-media path, \EFI\BOOT\BOOTX64.EFI).
    const fresh = await findUefiFirmware({ machine, secureBoot: secureBoot === true }, folders);
    if (!('missing' in fresh)) {
      firmware = fresh;
      varsFromBackup = false;
      why += ` (no firmware on this host takes its ${varsDisk.device.size}-byte variable store: an empty one is used)`;
    }
  }
  if ('missing' in firmware) return { kind: 'uefi', why, missing: firmware.missing };
  return { kind: 'uefi', why, firmware, ...(varsFromBackup && varsDisk !== undefined ? { varsDisk: varsDisk.name } : {}) };
}

/**
 * Whether only UEFI can start this disk: an EFI System Partition, and no MBR boot code. A
 * disk whose first sectors do not read (damage the disk check reports) is left to BIOS.
 */
async function uefiOnlyDisk(device: BlockDevice): Promise<boolean> {
  if (device.size < 512) return false;
  try {
    const sector = Buffer.from(await device.read(0, 512));
    if (sector.subarray(0, MBR_BOOT_CODE).some((b) => b !== 0)) return false;
    return (await listVolumes([device])).some((v) => v.typeDescription === ESP_DESCRIPTION);
  } catch {
    return false;
  }
}
