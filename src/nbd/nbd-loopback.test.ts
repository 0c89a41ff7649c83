/**
 * Coffer's NBD client against Coffer's NBD server, over unix sockets and TCP: bytes, maps,
 * writes, several clients with many requests in flight, device failures, and shutdown.
 */
import assert from 'node:assert/strict';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { BlockDevice, Extent } from '../blockdev/index.js';
import { RawImage } from '../disk/index.js';
import { CofferError, isCofferError } from '../errors/index.js';
import { makeTempDir, seededBytes } from '../testing/index.js';
import { NbdBlockDevice, NbdClient, NbdServer, RawFileDevice, type WritableBlockDevice } from './index.js';

const MiB = 1024 * 1024;
const SIZE = 12 * MiB + 512;
let dir: { path: string; remove(): Promise<void> };
let disk: RawImage;
let reference: Buffer;
const at = (name: string): string => path.join(dir.path, name);

before(async () => {
  dir = await makeTempDir('coffer-nbd-loopback');
  const handle = await open(at('disk.raw'), 'w+');
  await handle.truncate(SIZE);
  for (const [offset, seed, length] of [[0, 1, 300_000], [2 * MiB, 2, 3 * MiB], [9 * MiB + 4096, 3, 70_000], [SIZE - 512, 4, 512]] as const) {
    await handle.write(seededBytes(seed, length), 0, length, offset);
  }
  await handle.close();
  reference = await readFile(at('disk.raw'));
  disk = await RawImage.open(at('disk.raw'));
});

after(async () => {
  await disk?.close();
  await dir?.remove();
});

/** A server for one test, closed at its end. */
async function serving<T>(exports: Parameters<typeof NbdServer.listen>[1]['exports'], work: (server: NbdServer, errors: unknown[]) => Promise<T>, tcp = false): Promise<T> {
  const errors: unknown[] = [];
  const address = tcp ? { host: '127.0.0.1', port: 0 } : { socket: at(`s-${Math.random().toString(36).slice(2)}.sock`) };
  const server = await NbdServer.listen(address, { exports, onClientError: (e) => errors.push(e) });
  try {
    return await work(server, errors);
  } finally {
    await server.close();
  }
}

const uriOf = (server: NbdServer, name: string): string =>
  'socket' in server.address ? `nbd+unix:///${name}?socket=${server.address.socket}` : `nbd://127.0.0.1:${server.address.port}/${name}`;

/** The extents' ranges and kinds: NBD's base:allocation carries no chain layer. */
async function collect(source: AsyncIterable<Extent>): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const e of source) out.push({ offset: e.offset, length: e.length, kind: e.kind });
  return out;
}

for (const tcp of [false, true]) {
  test(`reads and the allocation map go through unchanged (${tcp ? 'TCP' : 'unix socket'})`, async () => {
    await serving({ disk: { device: disk } }, async (server, errors) => {
      const device = await NbdBlockDevice.open(uriOf(server, 'disk'));
      try {
        assert.equal(device.size, SIZE);
        assert.ok(Buffer.from(await device.read(0, SIZE)).equals(reference));
        assert.ok(Buffer.from(await device.read(2 * MiB - 3, 10)).equals(reference.subarray(2 * MiB - 3, 2 * MiB + 7)));
        assert.deepEqual(await collect(device.extents()), await collect(disk.extents()));
        assert.deepEqual(await collect(device.extents(MiB, 2 * MiB)), await collect(disk.extents(MiB, 2 * MiB)));
      } finally {
        await device.close();
      }
      assert.deepEqual(errors, []);
    }, tcp);
  });
}

test('several clients, each with many reads in flight, all get the right bytes', async () => {
  await serving({ disk: { device: disk } }, async (server) => {
    const devices = await Promise.all([1, 2, 3].map(() => NbdBlockDevice.open(uriOf(server, 'disk'), { maxInFlight: 8 })));
    try {
      assert.equal(server.connectionCount, 3);
      await Promise.all(devices.map(async (device, d) => {
        const offsets = Array.from({ length: 40 }, (_, i) => ((i + 1) * (d + 3) * 98_765) % (SIZE - 200_000));
        const reads = await Promise.all(offsets.map((o) => device.read(o, 100_000 + d)));
        reads.forEach((bytes, i) => assert.ok(Buffer.from(bytes).equals(reference.subarray(offsets[i] as number, (offsets[i] as number) + 100_000 + d))));
      }));
    } finally {
      await Promise.all(devices.map((d) => d.close()));
    }
  });
});

test('without structured replies: simple reads, and no block status', async () => {
  await serving({ disk: { device: disk } }, async (server) => {
    const client = await NbdClient.connect(uriOf(server, 'disk'), { structuredReplies: false, metaContexts: ['base:allocation'] });
    try {
      assert.equal(client.info.structuredReplies, false);
      assert.equal(client.info.metaContexts.size, 0);
      assert.ok(Buffer.from(await client.read(2 * MiB, MiB)).equals(reference.subarray(2 * MiB, 3 * MiB)));
      await assert.rejects(client.blockStatus(0, 4096), (e: unknown) => isCofferError(e, 'E_NBD_ERROR'));
    } finally {
      await client.close();
    }
  });
});

test('a writable export: write, write zeroes, trim, flush, FUA, then the file holds them', async () => {
  await writeFile(at('w.raw'), seededBytes(9, 4 * MiB));
  const writable = await RawFileDevice.open(at('w.raw'));
  try {
    await serving({ w: { device: writable, writable: true } }, async (server) => {
      const client = await NbdClient.connect(uriOf(server, 'w'));
      try {
        assert.equal(client.readOnly, false);
        const data = seededBytes(10, 300_000);
        await Promise.all([client.write(4096, data, { fua: true }), client.writeZeroes(MiB, 65536), client.trim(2 * MiB, 4096), client.write(3 * MiB, data.subarray(0, 1000))]);
        await client.flush();
        assert.ok(Buffer.from(await client.read(4096, data.length)).equals(data));
        assert.ok((await client.read(MiB, 65536)).every((b) => b === 0));
        await assert.rejects(client.write(4 * MiB - 10, new Uint8Array(11)), RangeError);
      } finally {
        await client.close();
      }
    });
    const file = await readFile(at('w.raw'));
    assert.ok(file.subarray(4096, 4096 + 300_000).equals(seededBytes(10, 300_000)));
    assert.ok(file.subarray(MiB, MiB + 65536).every((b) => b === 0));
    assert.ok(file.subarray(3 * MiB, 3 * MiB + 1000).equals(seededBytes(10, 1000)));
  } finally {
    await writable.close();
  }
});

/** A fault-injecting device: reads touching `badOffset` and every write fail as given. */
class FaultyDevice implements WritableBlockDevice {
  constructor(
    private readonly inner: BlockDevice,
    private readonly badOffset: number,
  ) {}

  get size(): number {
    return this.inner.size;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (offset <= this.badOffset && this.badOffset < offset + length) throw new CofferError('E_SOURCE_UNREADABLE', `bad sector at ${this.badOffset}`);
    return this.inner.read(offset, length, into);
  }

  extents(offset?: number, length?: number): AsyncIterable<Extent> {
    return this.inner.extents(offset, length);
  }

  async write(): Promise<void> {
    throw new CofferError('E_NO_SPACE', 'the overlay is full');
  }

  async writeZeroes(): Promise<void> {
    throw new Error('a bug in the device');
  }

  async trim(): Promise<void> {}
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

test('device failures become NBD errors for that request only; the connection goes on', async () => {
  await serving({ f: { device: new FaultyDevice(disk, 2 * MiB + 100), writable: true } }, async (server, errors) => {
    const device = await NbdBlockDevice.open(uriOf(server, 'f'));
    try {
      await assert.rejects(device.read(2 * MiB, MiB), (e: unknown) => isCofferError(e, 'E_SOURCE_UNREADABLE') && /NBD_EIO.*bad sector at 2097252/.test((e as Error).message));
      await assert.rejects(device.client.write(0, new Uint8Array(10)), (e: unknown) => isCofferError(e, 'E_NBD_ERROR') && /NBD_ENOSPC.*overlay is full/.test((e as Error).message));
      await assert.rejects(device.client.writeZeroes(0, 10), (e: unknown) => isCofferError(e, 'E_NBD_ERROR') && /NBD_EIO/.test((e as Error).message));
      assert.ok(Buffer.from(await device.read(0, 4096)).equals(reference.subarray(0, 4096)));
    } finally {
      await device.close();
    }
    // The unexpected failures (not the full overlay) were reported to the server's owner.
    assert.deepEqual(errors.map((e) => (e as Error).message), ['bad sector at 2097252', 'a bug in the device']);
  });
});

test('close() ends connected clients: their requests fail, later ones too, nothing hangs', async () => {
  const server = await NbdServer.listen({ socket: at('closing.sock') }, { exports: { disk: { device: disk } } });
  const client = await NbdClient.connect(uriOf(server, 'disk'));
  assert.ok(Buffer.from(await client.read(0, 512)).equals(reference.subarray(0, 512)));
  await server.close();
  await assert.rejects(client.read(0, 512), (e: unknown) => isCofferError(e, 'E_CONNECTION_FAILED'));
  await assert.rejects(client.read(0, 512), (e: unknown) => isCofferError(e, 'E_CONNECTION_FAILED'));
  await client.close();
  await assert.rejects(NbdClient.connect(uriOf(server, 'disk')), (e: unknown) => isCofferError(e, 'E_CONNECTION_FAILED'));
});

test('a socket in a folder that does not exist: E_CONNECTION_FAILED naming the folder (libuv says EACCES)', async () => {
  const missing = at('no-such-folder/s.sock');
  await assert.rejects(NbdServer.listen({ socket: missing }, { exports: {} }), (e: unknown) => isCofferError(e, 'E_CONNECTION_FAILED') && (e as Error).message.includes('no-such-folder does not exist'));
});

test('listening on an address in use is an E_CONNECTION_FAILED error', async () => {
  await serving({ disk: { device: disk } }, async (server) => {
    await assert.rejects(NbdServer.listen(server.address, { exports: {} }), (e: unknown) => isCofferError(e, 'E_CONNECTION_FAILED') && /EADDRINUSE/.test((e as Error).message));
  });
});
