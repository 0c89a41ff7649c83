import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { makeTempDir, seededBytes } from '../testing/index.js';
import { copyDevice } from './copy-device.js';
import { openDiskImage } from './open-image.js';
import { openDiskTarget } from './open-target.js';

const run = promisify(execFile);
const GiB = 1024 * 1024 * 1024;

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
