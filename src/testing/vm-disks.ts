/**
 * Whole VM disks for file-level restore tests: one partition per filesystem Coffer reads,
 * each populated from the shared tree (`writeFsTree`), laid out by sfdisk in a GPT or an MBR
 * table (the MBR one puts FAT, NTFS and XFS in logical partitions of an extended one).
 *
 * | table | p1   | p2         | p3   | p4  | p5    | p6   | p7  |
 * |-------|------|------------|------|-----|-------|------|-----|
 * | gpt   | ext4 | FAT32      | NTFS | XFS |       |      |     |
 * | dos   | ext4 | (extended) |      |     | FAT32 | NTFS | XFS |
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { cachedFixture, runTool, type PartitionedDisk } from './disks.js';
import { buildExtImage } from './ext-image.js';
import { buildFatImage } from './fat-image.js';
import { buildNtfsImage } from './ntfs-image.js';
import { buildXfsImage } from './xfs-image.js';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;

export interface FilesVmDisk extends PartitionedDisk {
  /** Each filesystem: its volume name and the image file it was copied from (the oracle's input). */
  filesystems: { volume: string; type: 'ext4' | 'fat32' | 'ntfs' | 'xfs'; image: string; offset: number; size: number }[];
}

export interface FilesVmDiskOptions {
  table: 'gpt' | 'dos';
  /** Size of `big.bin` in every filesystem (150 MB in the full test). */
  bigFileBytes: number;
}

/** Builds (once, cached) the disk described above and returns its layout. */
export async function buildFilesVmDisk(options: FilesVmDiskOptions): Promise<FilesVmDisk> {
  // XFS: each of its two allocation groups must hold big.bin, and mkfs.xfs wants 300 MiB at least.
  const partMiB = Math.max(320, Math.ceil((options.bigFileBytes * 2.4) / MiB) + 8);
  const images = [
    { type: 'ext4' as const, image: await buildExtImage({ sizeMiB: partMiB, bigFileBytes: options.bigFileBytes }) },
    { type: 'fat32' as const, image: await buildFatImage({ sizeMiB: partMiB, bigFileBytes: options.bigFileBytes, fatBits: 32 }) },
    { type: 'ntfs' as const, image: await buildNtfsImage({ sizeMiB: partMiB, bigFileBytes: options.bigFileBytes }) },
    { type: 'xfs' as const, image: await buildXfsImage({ sizeMiB: partMiB, bigFileBytes: options.bigFileBytes }) },
  ];
  const stamps = await Promise.all(images.map(async (i) => {
    const st = await fs.stat(i.image);
    return [i.image, st.size, st.mtimeMs, st.ino];
  }));
  // MBR: each logical partition needs 1 MiB before it for its EBR.
  const layout = images.map((image, i) => ({ ...image, startMiB: 1 + i * (partMiB + 1) + (options.table === 'dos' && i > 0 ? 1 : 0) }));
  const diskMiB = (layout.at(-1)?.startMiB ?? 0) + partMiB + 2;
  const file = await cachedFixture(`files-vm-${options.table}`, { ...options, partMiB, stamps }, async (tmp) => {
    await fs.writeFile(tmp, '');
    await fs.truncate(tmp, diskMiB * MiB);
    const ids: Record<string, string> = { ext4: 'L', fat32: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7', ntfs: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7', xfs: 'L' };
    const mbr: Record<string, string> = { ext4: '83', fat32: 'c', ntfs: '7', xfs: '83' };
    let table: string;
    if (options.table === 'gpt') {
      table = `label: gpt\nlabel-id: 5B2C9B3A-1D7E-4F43-9C1E-2A6B4E0C7D11\n${layout.map((l) => `start=${l.startMiB * 2048}, size=${partMiB * 2048}, type=${ids[l.type]}, name=${l.type}`).join('\n')}\n`;
    } else {
      const [first, ...logical] = layout;
      const extStart = (first?.startMiB ?? 1) + partMiB;
      table = `label: dos\nlabel-id: 0x5b2c9b3a\nstart=${(first?.startMiB ?? 1) * 2048}, size=${partMiB * 2048}, type=83\n`
        + `start=${extStart * 2048}, size=${(diskMiB - extStart - 1) * 2048}, type=5\n`
        + logical.map((l) => `start=${l.startMiB * 2048}, size=${partMiB * 2048}, type=${mbr[l.type]}`).join('\n') + '\n';
    }
    await runTool('sfdisk', ['-q', tmp], table);
    for (const l of layout) {
      await execFileAsync('dd', [`if=${l.image}`, `of=${tmp}`, 'bs=1M', `seek=${l.startMiB * MiB}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
    }
  });
  const names = options.table === 'gpt' ? ['p1', 'p2', 'p3', 'p4'] : ['p1', 'p5', 'p6', 'p7'];
  const st = await fs.stat(file);
  return {
    path: file,
    size: st.size,
    partitions: layout.map((l) => ({ start: l.startMiB * MiB, size: partMiB * MiB })),
    filesystems: layout.map((l, i) => ({ volume: names[i] as string, type: l.type, image: l.image, offset: l.startMiB * MiB, size: partMiB * MiB })),
  };
}
