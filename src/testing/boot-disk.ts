/**
 * A bootable test disk (shared/notes/bootable-test-disk.md): 32 MiB raw, MBR with one active
 * FAT16 partition at sector 2048 holding SYSLINUX, Debian's cloud kernel and a busybox
 * initramfs whose /init prints `MARK <kernel release>` on the serial console (ttyS0) and
 * powers the VM off. Built once per mark with no mount and no root, from the archive's .deb
 * files (never installed), and cached. Boots in about 3 s under TCG:
 * `qemu-system-x86_64 -machine accel=tcg -m 256 -display none -no-reboot -serial file:LOG
 * -drive file=DISK,format=raw,if=virtio`, then look for a line starting with `MARK `.
 * Needs fdisk, dosfstools, mtools, syslinux, syslinux-common, cpio, gzip and apt lists.
 */
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cachedFixture, requireTools, runTool } from './disks.js';
import { debianPackage, guestKernel, unpackDebianPackage } from './debian-packages.js';

/** The line the guest prints by default. */
export const BOOT_MARK = 'COFFER-BOOT-OK';

const DISK_MIB = 32;
/** First sector of the partition, and its byte offset. */
const START = 2048;
const OFFSET = START * 512;
const SYSLINUX_MBR = '/usr/lib/syslinux/mbr/mbr.bin';

/**
 * What every test boot disk boots: Debian's kernel as `WORK/vmlinuz` and a busybox initramfs
 * `WORK/initrd.gz` whose /init prints `MARK <kernel release>` on the console and powers off.
 */
export async function writeGuestPayload(work: string, mark: string, vmlinuz: string, busybox: string): Promise<{ vmlinuz: string; initrd: string }> {
  const root = path.join(work, 'root');
  await unpackDebianPackage(busybox, path.join(work, 'bb'), ['./bin/busybox']);
  for (const d of ['bin', 'dev', 'proc', 'sys']) await fs.mkdir(path.join(root, d), { recursive: true });
  await fs.copyFile(path.join(work, 'bb', 'bin', 'busybox'), path.join(root, 'bin', 'busybox'));
  await fs.chmod(path.join(root, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'mount', 'echo', 'cat', 'poweroff']) await fs.symlink('busybox', path.join(root, 'bin', applet));
  await fs.writeFile(path.join(root, 'init'), [
    '#!/bin/busybox sh',
    'export PATH=/bin',
    'mount -t proc proc /proc',
    'mount -t devtmpfs devtmpfs /dev',
    `echo "${mark} $(cat /proc/sys/kernel/osrelease)" > /dev/console`,
    'poweroff -f',
    '',
  ].join('\n'), { mode: 0o755 });
  const initrd = path.join(work, 'initrd.gz');
  await runTool('sh', ['-c', `cd '${root}' && find . | cpio -o -H newc -R 0:0 --quiet | gzip -9 > '${initrd}'`]);
  await fs.copyFile(vmlinuz, path.join(work, 'vmlinuz'));
  return { vmlinuz: path.join(work, 'vmlinuz'), initrd };
}

/** The cached boot disk for `mark` (letters, digits and '-'); returns its path. */
export async function buildBootDisk(mark: string = BOOT_MARK): Promise<string> {
  if (!/^[A-Za-z0-9-]+$/.test(mark)) throw new RangeError(`bad boot mark ${mark}`);
  await requireTools('sfdisk', 'mkfs.fat', 'mcopy', 'syslinux', 'cpio', 'gzip', 'dd');
  const kernel = await guestKernel();
  const busybox = await debianPackage('busybox-static');
  return cachedFixture('boot-disk', { mark, kernel: path.basename(kernel.deb), busybox: path.basename(busybox), mib: DISK_MIB }, async (tmp) => {
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-bootdisk-'));
    try {
      const { initrd } = await writeGuestPayload(work, mark, kernel.vmlinuz, busybox);
      // SERIAL must come first; quiet silences SYSLINUX; panic=-1 with -no-reboot ends QEMU on a panic.
      await fs.writeFile(path.join(work, 'syslinux.cfg'), [
        'SERIAL 0 115200', 'DEFAULT linux', 'PROMPT 0', 'TIMEOUT 0', 'LABEL linux',
        '  KERNEL vmlinuz', '  INITRD initrd.gz', '  APPEND console=ttyS0,115200 quiet panic=-1', '',
      ].join('\n'));
      await fs.writeFile(tmp, '');
      await fs.truncate(tmp, DISK_MIB * 1024 * 1024);
      await runTool('sfdisk', ['-q', tmp], `label: dos\nlabel-id: 0x0c0ffee0\nstart=${START}, type=e, bootable\n`);
      // mkfs.fat: --offset in sectors, the size in KiB; -i fixes the volume id so the disk is reproducible.
      await runTool('mkfs.fat', ['-F', '16', '-n', 'COFFERBOOT', '-i', '0c0ffee0', '-h', String(START), '--offset', String(START), tmp, String((DISK_MIB * 2048 - START) / 2)]);
      await runTool('syslinux', ['--install', '--offset', String(OFFSET), tmp]);
      const mtoolsEnv = `MTOOLS_SKIP_CHECK=1 LC_ALL=C.UTF-8`;
      await runTool('sh', ['-c', `${mtoolsEnv} mcopy -i '${tmp}@@${OFFSET}' '${work}/vmlinuz' '${initrd}' '${work}/syslinux.cfg' ::/`]);
      await runTool('dd', [`if=${SYSLINUX_MBR}`, `of=${tmp}`, 'bs=440', 'count=1', 'conv=notrunc', 'status=none']);
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  });
}
