/**
 * A test disk only UEFI firmware boots: 40 MiB raw, GPT with one EFI System Partition (FAT16)
 * at sector 2048 and no MBR boot code (a BIOS finds nothing to run). On the ESP: systemd-boot
 * (from Debian's systemd-boot-efi .deb, never installed) on the removable-media path
 * `\EFI\BOOT\BOOTX64.EFI`, so an empty UEFI variable store boots it, with a loader entry for
 * the same kernel and busybox initramfs as the BIOS boot disk (boot-disk.ts): the guest prints
 * `MARK <kernel release>` on ttyS0 and powers off. Boots in about 10 s under TCG with OVMF:
 * `qemu-system-x86_64 -machine q35,accel=tcg -drive if=pflash,unit=0,readonly=on,format=raw,
 * file=OVMF_CODE_4M.fd -drive if=pflash,unit=1,format=raw,file=VARS-COPY -serial stdio …`.
 * Built once per mark with no mount and no root, and cached.
 */
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeGuestPayload } from './boot-disk.js';
import { debianPackage, guestKernel, unpackDebianPackage } from './debian-packages.js';
import { cachedFixture, requireTools, runTool } from './disks.js';

/** The line the guest prints by default. */
export const UEFI_BOOT_MARK = 'COFFER-UEFI-BOOT-OK';

const DISK_MIB = 40;
const START = 2048;
const OFFSET = START * 512;
/** The partition ends before the backup GPT (33 sectors) and the last sector. */
const PARTITION_SECTORS = DISK_MIB * 2048 - START - 34;
const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const SYSTEMD_BOOT = './usr/lib/systemd/boot/efi/systemd-bootx64.efi';

/** The cached UEFI boot disk for `mark` (letters, digits and '-'); returns its path. */
export async function buildUefiBootDisk(mark: string = UEFI_BOOT_MARK): Promise<string> {
  if (!/^[A-Za-z0-9-]+$/.test(mark)) throw new RangeError(`bad boot mark ${mark}`);
  await requireTools('sfdisk', 'mkfs.fat', 'mcopy', 'mmd', 'cpio', 'gzip');
  const kernel = await guestKernel();
  const busybox = await debianPackage('busybox-static');
  const systemdBoot = await debianPackage('systemd-boot-efi');
  const key = { mark, kernel: path.basename(kernel.deb), busybox: path.basename(busybox), boot: path.basename(systemdBoot), mib: DISK_MIB };
  return cachedFixture('uefi-boot-disk', key, async (tmp) => {
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-uefidisk-'));
    try {
      const { vmlinuz, initrd } = await writeGuestPayload(work, mark, kernel.vmlinuz, busybox);
      await unpackDebianPackage(systemdBoot, path.join(work, 'sb'), [SYSTEMD_BOOT]);
      const loader = path.join(work, 'loader.conf');
      const entry = path.join(work, 'coffer.conf');
      // timeout 0: the default entry at once, no menu; panic=-1 with -no-reboot ends QEMU on a panic.
      await fs.writeFile(loader, 'timeout 0\ndefault coffer.conf\n');
      await fs.writeFile(entry, 'title Coffer test guest\nlinux /vmlinuz\ninitrd /initrd.gz\noptions console=ttyS0,115200 quiet panic=-1\n');
      await fs.writeFile(tmp, '');
      await fs.truncate(tmp, DISK_MIB * 1024 * 1024);
      await runTool('sfdisk', ['-q', tmp], `label: gpt\nlabel-id: 0C0FFEE0-0000-4000-8000-00000000EF10\nstart=${START}, size=${PARTITION_SECTORS}, type=${ESP_TYPE}, uuid=0C0FFEE0-0000-4000-8000-00000000EF11, name="EFI System"\n`);
      await runTool('mkfs.fat', ['-F', '16', '-n', 'COFFERESP', '-i', '0c0ffef1', '-h', String(START), '--offset', String(START), tmp, String(PARTITION_SECTORS / 2)]);
      const at = `'${tmp}@@${OFFSET}'`;
      const mtools = 'MTOOLS_SKIP_CHECK=1 LC_ALL=C.UTF-8';
      await runTool('sh', ['-c', [
        `${mtools} mmd -i ${at} ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries`,
        `${mtools} mcopy -i ${at} '${path.join(work, 'sb', SYSTEMD_BOOT)}' ::/EFI/BOOT/BOOTX64.EFI`,
        `${mtools} mcopy -i ${at} '${loader}' ::/loader/`,
        `${mtools} mcopy -i ${at} '${entry}' ::/loader/entries/`,
        `${mtools} mcopy -i ${at} '${vmlinuz}' '${initrd}' ::/`,
      ].join(' && ')]);
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  });
}
