/**
 * A libvirt domain's UEFI variable store: the file `<os><nvram>` names (system mode
 * /var/lib/libvirt/qemu/nvram/NAME_VARS.fd, session mode ~/.config/libvirt/qemu/nvram/), which
 * QEMU writes as the VM's second flash (its boot entries, Secure Boot keys). It is not one of
 * the domain's disks, so libvirt's backup job does not export it: live backup reads the file
 * whole right after `backup-begin` (while the guest is frozen, when it is) and offers it as one
 * more disk named {@link LIBVIRT_NVRAM_DISK}, raw, read in full at every backup (a few hundred
 * KiB to a few MiB: no change tracking). A store that cannot be read leaves the backup without
 * it, with the reason among the skipped disks (a warning), never a failed backup.
 */
import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';

/**
 * The variable store's disk name in the snapshot. No `<target dev>` can be named so (they are
 * vda, sdb, hdc…); restore (restore/vm/boot-hints.ts) finds the store by this name.
 */
export const LIBVIRT_NVRAM_DISK = 'nvram';

/** The largest store read (OVMF's are 128 KiB to 4 MiB, AAVMF's 64 MiB): anything bigger is no variable store. */
export const MAX_NVRAM_BYTES = 64 * 1024 * 1024;

/**
 * Reads the store `file` whole: its bytes, or why not (missing, unreadable, not a regular file,
 * larger than `maxBytes`). Never throws, never blocks on a FIFO (opened non-blocking, then
 * checked to be a regular file).
 */
export async function readVariableStore(file: string, maxBytes: number = MAX_NVRAM_BYTES): Promise<{ bytes: Buffer } | { skip: string }> {
  const skip = (why: string) => ({ skip: `the UEFI variable store ${file} ${why}: the backup has no copy of it` });
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    return skip(`cannot be opened (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return skip('is not a regular file');
    if (stat.size > maxBytes) return skip(`is ${stat.size} bytes, more than the ${maxBytes} a variable store may be`);
    // One byte more than the size: a store that grew while it was read is seen.
    const buffer = Buffer.alloc(stat.size + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled !== stat.size) return skip(`changed size while it was read (${stat.size} bytes, then ${filled}${filled > stat.size ? ' or more' : ''})`);
    if (filled === 0) return skip('is empty');
    return { bytes: buffer.subarray(0, filled) };
  } catch (error) {
    return skip(`cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  } finally {
    await handle.close().catch(() => {});
  }
}
