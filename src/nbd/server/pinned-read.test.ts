/**
 * Zero-copy replies (pinned-read.ts): a device's views go to the socket as they are and are
 * released only once the socket wrote them. The device here hands out a fresh copy of the
 * range for each read and scribbles over it the moment it is released (as a frame slot
 * reused by another frame would be): released any earlier, while part of a 4 MiB reply
 * still waits in the socket's queue (a unix socket's buffer holds far less), the client
 * would receive the scribble.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Extent } from '../../blockdev/index.js';
import { makeTempDir, seededBytes } from '../../testing/index.js';
import { NbdBlockDevice, NbdServer } from '../index.js';
import type { PinnedRead, PinnedReadDevice } from './pinned-read.js';

const MiB = 1024 * 1024;
const BLOCK = 64 * 1024;
const SIZE = 24 * MiB;
let dir: { path: string; remove(): Promise<void> };

before(async () => {
  dir = await makeTempDir('coffer-nbd-pinned');
});

after(async () => {
  await dir?.remove();
});

/** Data everywhere except every fifth block (zeros, answered as holes). */
class ScribblingDevice implements PinnedReadDevice {
  readonly size = SIZE;
  readonly bytes = seededBytes(5, SIZE);
  pinned = 0;
  released = 0;
  constructor() {
    for (let block = 0; block * BLOCK < SIZE; block += 5) this.bytes.fill(0, block * BLOCK, (block + 1) * BLOCK);
  }
  async readPinned(offset: number, length: number): Promise<PinnedRead | undefined> {
    if (offset % BLOCK !== 0 || length % BLOCK !== 0) return undefined;
    const runs: { offset: number; length: number; data?: Uint8Array[] }[] = [];
    const copies: Buffer[] = [];
    for (let at = offset; at < offset + length; at += BLOCK) {
      const zero = (at / BLOCK) % 5 === 0;
      const last = runs[runs.length - 1];
      if (zero) {
        if (last !== undefined && last.data === undefined) last.length += BLOCK;
        else runs.push({ offset: at, length: BLOCK });
        continue;
      }
      const copy = Buffer.from(this.bytes.subarray(at, at + BLOCK));
      copies.push(copy);
      if (last?.data !== undefined) {
        last.data.push(copy);
        last.length += BLOCK;
      } else runs.push({ offset: at, length: BLOCK, data: [copy] });
    }
    this.pinned += 1;
    let done = false;
    return {
      runs,
      release: () => {
        if (done) return;
        done = true;
        this.released += 1;
        for (const copy of copies) copy.fill(0xee);
      },
    };
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.bytes.subarray(offset, offset + length);
  }
  async *extents(offset = 0, length = SIZE - offset): AsyncIterable<Extent> {
    yield { offset, length, kind: 'data' };
  }
  async close(): Promise<void> {}
}

test('pinned reads: views are released only after the socket wrote them; zero runs go out as holes', async () => {
  const device = new ScribblingDevice();
  const server = await NbdServer.listen({ socket: path.join(dir.path, 's.sock') }, { exports: { disk: { device } } });
  try {
    const client = await NbdBlockDevice.open(`nbd+unix:///disk?socket=${path.join(dir.path, 's.sock')}`, { maxInFlight: 6 });
    try {
      const reads = Array.from({ length: SIZE / (4 * MiB) }, (_, i) => ({ offset: i * 4 * MiB, length: 4 * MiB }));
      reads.push({ offset: BLOCK, length: 3 * BLOCK }, { offset: 5 * BLOCK, length: BLOCK });
      const answers = await Promise.all(reads.map(({ offset, length }) => client.read(offset, length)));
      answers.forEach((data, i) => {
        const { offset, length } = reads[i] as { offset: number; length: number };
        assert.ok(Buffer.from(data).equals(device.bytes.subarray(offset, offset + length)), `bytes differ in ${length} at ${offset}`);
      });
      // An unaligned read takes the device's read().
      assert.ok(Buffer.from(await client.read(1000, 5000)).equals(device.bytes.subarray(1000, 6000)));
    } finally {
      await client.close();
    }
  } finally {
    await server.close();
  }
  assert.equal(device.pinned, SIZE / (4 * MiB) + 2);
  assert.equal(device.released, device.pinned);
});
