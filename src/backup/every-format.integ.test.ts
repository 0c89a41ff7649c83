/**
 * One disk in every format and layout Coffer reads (made by qemu-img from one raw disk), and
 * qcow2 overlays over each of them (mixed-format chains, backing format recorded with `-F`):
 * each backed up and restored equals `qemu-img convert` of the image; the disk's blocks are
 * stored once, whatever format carried them (the second and later backups of the same bytes
 * add nothing); and an overlay's own writes are the only layer-0 data, as `qemu-img map` says.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { openDiskImage } from '../disk/index.js';
import { initRepository, LocalBackend } from '../repo/index.js';
import { SnapshotDisk } from '../restore/index.js';
import { backupFile, seededBytes, tempFolders, withRepo } from '../testing/index.js';

const run = promisify(execFile);
const tempFolder = tempFolders();
const MiB = 1024 * 1024;
const SIZE = 12 * MiB;

/** qemu-img's format name and create options for each layout. */
const LAYOUTS: { name: string; format: string; options: string[] }[] = [
  { name: 'qcow2', format: 'qcow2', options: [] },
  { name: 'qcow2-compressed', format: 'qcow2', options: ['-c'] },
  { name: 'vmdk-monolithicSparse', format: 'vmdk', options: ['-o', 'subformat=monolithicSparse'] },
  { name: 'vmdk-streamOptimized', format: 'vmdk', options: ['-o', 'subformat=streamOptimized'] },
  { name: 'vmdk-monolithicFlat', format: 'vmdk', options: ['-o', 'subformat=monolithicFlat'] },
  { name: 'vmdk-twoGbMaxExtentSparse', format: 'vmdk', options: ['-o', 'subformat=twoGbMaxExtentSparse'] },
  { name: 'vhd-dynamic', format: 'vpc', options: ['-o', 'subformat=dynamic'] },
  { name: 'vhd-fixed', format: 'vpc', options: ['-o', 'subformat=fixed'] },
  { name: 'vhdx-dynamic', format: 'vhdx', options: ['-o', 'subformat=dynamic'] },
  { name: 'vhdx-fixed', format: 'vhdx', options: ['-o', 'subformat=fixed'] },
];

/** The image as qemu-img reads it, as raw bytes. */
async function qemuRaw(image: string, format: string, folder: string): Promise<Buffer> {
  const out = join(folder, 'oracle.raw');
  await run('qemu-img', ['convert', '-f', format, '-O', 'raw', image, out]);
  return readFile(out);
}

test('every format and layout, and qcow2 overlays over each: backed up, restored equal to qemu-img, blocks stored once', { timeout: 600_000 }, async () => {
  const folder = await tempFolder('coffer-every-format');
  // Random data, a run of zeros and a hole, so that zero detection and allocation both matter.
  const base = Buffer.alloc(SIZE);
  seededBytes(11, 4 * MiB).copy(base, 0);
  seededBytes(12, 3 * MiB).copy(base, 7 * MiB);
  base.fill(0x5a, 11 * MiB, 11 * MiB + 4096);
  const raw = join(folder, 'base.raw');
  await writeFile(raw, base);
  const root = join(folder, 'repo');
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 } });
  await withRepo(new LocalBackend(root), async (repo) => {
    const first = await backupFile(repo, 'raw', raw);
    assert.ok(first.stats.bytesNew > 0);
    const restore = async (snapshot: typeof first): Promise<Buffer> => {
      const disk = snapshot.disks[0];
      assert.ok(disk);
      return Buffer.from(await new SnapshotDisk(repo, snapshot.id, disk).read(0, disk.size));
    };
    assert.ok((await restore(first)).equals(base));

    for (const layout of LAYOUTS) {
      const image = join(folder, `${layout.name}.img`);
      await run('qemu-img', ['convert', '-f', 'raw', '-O', layout.format, ...layout.options, raw, image]);
      const expected = await qemuRaw(image, layout.format, folder);
      const snapshot = await backupFile(repo, layout.name, image);
      assert.equal(snapshot.disks[0]?.sourceFormat, layout.format === 'vpc' ? 'vpc' : layout.format, layout.name);
      assert.ok((await restore(snapshot)).equals(expected), `${layout.name}: the restore equals qemu-img convert`);
      assert.equal(snapshot.stats.bytesNew, 0, `${layout.name}: the same blocks, already stored from the raw disk, add nothing`);

      // A qcow2 overlay recording this image as its backing file and format, with writes of its own.
      const overlay = join(folder, `${layout.name}-overlay.qcow2`);
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', layout.format, overlay]);
      await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x61 1M 64k', '-c', 'write -z 8M 1M', '-c', 'write -P 0x62 10M 4k', overlay]);
      const overlayExpected = await qemuRaw(overlay, 'qcow2', folder);
      const opened = await openDiskImage(overlay);
      try {
        assert.equal(opened.backing?.format, layout.format, `${layout.name}: the backing file opened in its recorded format`);
        assert.ok(Buffer.from(await opened.read(0, opened.size)).equals(overlayExpected), `${layout.name} overlay: reads equal qemu-img convert`);
        const ours: string[] = [];
        for await (const e of opened.extents()) if (e.layer === 0) ours.push(`${e.offset}+${e.length} ${e.kind}`);
        const theirs = (JSON.parse((await run('qemu-img', ['map', '-f', 'qcow2', '--output=json', overlay])).stdout) as { start: number; length: number; depth: number; data: boolean; present: boolean }[])
          .filter((m) => m.depth === 0 && m.present)
          .map((m) => `${m.start}+${m.length} ${m.data ? 'data' : 'zero'}`);
        assert.deepEqual(ours, theirs, `${layout.name} overlay: its own clusters, as qemu-img map says`);
      } finally {
        await opened.close();
      }
      const chained = await backupFile(repo, `${layout.name}-overlay`, overlay);
      assert.ok((await restore(chained)).equals(overlayExpected), `${layout.name} overlay: the restore equals qemu-img convert`);
    }
  });
});
