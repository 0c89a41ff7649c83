import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { BlockDevice, Extent, Placement } from '../blockdev/index.js';
import { isCofferError } from '../errors/index.js';
import { makeTempDir, seededBytes } from '../testing/index.js';
import { copyDevice } from './copy-device.js';
import { openDiskImage } from './open-image.js';
import { openDiskTarget } from './open-target.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

for (const format of ['raw', 'qcow2'] as const) {
  test(`copy of a 64 GiB thin disk to ${format}: the empty stretches go as runs of up to 1 GiB, not 262,144 blocks, and the copy is identical`, async () => {
    const dir = await makeTempDir('coffer-copy-thin');
    try {
      const source = join(dir.path, 'thin.raw');
      const file = await open(source, 'w');
      await file.truncate(64 * GiB);
      await file.write(seededBytes(7, 1024 * 1024), 0, 1024 * 1024, 10 * GiB + 12345);
      await file.write(seededBytes(8, 4096), 0, 4096, 64 * GiB - 4096);
      await file.close();
      const device = await openDiskImage(source);
      const out = join(dir.path, `copy.${format}`);
      const target = await openDiskTarget(out, device.size, { format, overwrite: false });
      let steps = 0;
      try {
        await copyDevice(device, target, { blockSize: 256 * 1024, inFlight: 8, onProgress: () => steps++ });
      } finally {
        await device.close();
      }
      assert.ok(steps < 200, `${steps} copy steps for 1 MiB of data in 64 GiB`);
      const { stdout } = await run('qemu-img', ['compare', '-f', 'raw', '-F', format, source, out]);
      assert.match(stdout, /identical/);
    } finally {
      await dir.remove();
    }
  });
}

/**
 * A disk of `blocks` 1 MiB blocks whose data lies in a file in reverse block order (as an
 * image's clusters lie anywhere in its file), except block `compressed`, which only `read`
 * gives, and block `empty`, which is zeros; counts its reads.
 */
class PlacedDisk implements BlockDevice {
  reads = 0;
  constructor(
    readonly size: number,
    private readonly disk: Buffer,
    private readonly store: { fd: number },
    private readonly special: { compressed: number; empty: number; storeBlocks: number },
  ) {}

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.reads++;
    const target = into ?? new Uint8Array(length);
    target.set(this.disk.subarray(offset, offset + length));
    return target;
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    for (let at = offset; at < offset + length; ) {
      const block = Math.floor(at / MiB);
      const end = Math.min(offset + length, (block + 1) * MiB);
      yield { offset: at, length: end - at, kind: block === this.special.empty ? 'zero' : 'data' };
      at = end;
    }
  }

  async *placements(offset: number, length: number): AsyncIterable<Placement> {
    for (let at = offset; at < offset + length; ) {
      const block = Math.floor(at / MiB);
      const end = Math.min(offset + length, (block + 1) * MiB);
      if (block === this.special.empty) yield { offset: at, length: end - at, kind: 'zero' };
      else if (block === this.special.compressed) yield { offset: at, length: end - at, kind: 'read' };
      else yield { offset: at, length: end - at, kind: 'file', fd: this.store.fd, at: (this.special.storeBlocks - 1 - block) * MiB + (at - block * MiB) };
      at = end;
    }
  }

  async close(): Promise<void> {}
}

test('a device that places its bytes in files is copied file to file: only what must be read is read, zeros stay holes', async () => {
  const dir = await makeTempDir('coffer-copy-placed');
  try {
    const blocks = 8;
    const disk = seededBytes(11, blocks * MiB);
    disk.fill(0, 2 * MiB, 3 * MiB); // block 2: the extent map's zeros
    disk.fill(0, 5 * MiB + 4096, 5 * MiB + 3 * 4096); // two zero pages inside data
    const store = Buffer.alloc(blocks * MiB);
    for (let block = 0; block < blocks; block++) disk.copy(store, (blocks - 1 - block) * MiB, block * MiB, (block + 1) * MiB);
    await writeFile(join(dir.path, 'store'), store);
    const storeFile = await open(join(dir.path, 'store'), 'r');
    const device = new PlacedDisk(blocks * MiB - 1000, disk, storeFile, { compressed: 6, empty: 2, storeBlocks: blocks });
    const out = join(dir.path, 'copy.raw');
    try {
      const target = await openDiskTarget(out, device.size, { format: 'raw', overwrite: false });
      const progress = await copyDevice(device, target, { blockSize: 2 * MiB, inFlight: 3 });
      assert.equal(device.reads, 1, 'only the 2 MiB block holding the compressed range was read');
      assert.equal(progress.bytesDone, device.size);
      assert.ok(progress.bytesWritten <= device.size - MiB - 2 * 4096, `${progress.bytesWritten} bytes written: the zero block and zero pages were left out`);
    } finally {
      await storeFile.close();
    }
    assert.ok((await readFile(out)).equals(disk.subarray(0, blocks * MiB - 1000)), 'the copy is the disk');
  } finally {
    await dir.remove();
  }
});

test('a placed file that ends early fails the copy as a shrunk source, and the new target is removed', async () => {
  const dir = await makeTempDir('coffer-copy-placed-short');
  try {
    await writeFile(join(dir.path, 'store'), seededBytes(12, 3 * MiB));
    const storeFile = await open(join(dir.path, 'store'), 'r');
    const device = new PlacedDisk(4 * MiB, seededBytes(12, 4 * MiB), storeFile, { compressed: -1, empty: -1, storeBlocks: 4 });
    const out = join(dir.path, 'copy.raw');
    try {
      const target = await openDiskTarget(out, device.size, { format: 'raw', overwrite: false });
      await assert.rejects(copyDevice(device, target, { blockSize: MiB, inFlight: 2 }), (error: unknown) => isCofferError(error) && error.code === 'E_SOURCE_SHRUNK');
    } finally {
      await storeFile.close();
    }
    await assert.rejects(stat(out), { code: 'ENOENT' });
  } finally {
    await dir.remove();
  }
});
