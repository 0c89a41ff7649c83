/**
 * SocketReader over a real unix socket, with Node's per-read buffers and with one reused read
 * buffer: the bytes come out exactly as sent whether they go straight into a waiting read's
 * buffer or are queued (and so must be copied before the reused buffer is overwritten), across
 * backpressure (more than the reader's high-water mark sent before a byte is read).
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeTempDir, seededBytes } from '../testing/index.js';
import { reusedReadBuffer, SocketReader } from './socket-reader.js';

const MiB = 1024 * 1024;
const SENT = seededBytes(11, 12 * MiB + 12345);
let dir: { path: string; remove(): Promise<void> };
let server: Server;
let socketPath: string;

before(async () => {
  dir = await makeTempDir('coffer-socket-reader');
  socketPath = path.join(dir.path, 's.sock');
  // Each connection gets SENT in uneven writes, then the server ends it.
  server = createServer((socket) => {
    let at = 0;
    let size = 1;
    while (at < SENT.length) {
      const n = Math.min(size, SENT.length - at);
      socket.write(SENT.subarray(at, at + n));
      at += n;
      size = (size * 7 + 13) % (700 * 1024);
    }
    socket.end();
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await dir?.remove();
});

async function connect(reused: boolean): Promise<{ socket: Socket; reader: SocketReader }> {
  const reading = reused ? reusedReadBuffer() : undefined;
  const socket = createConnection({ path: socketPath, ...(reading ? { onread: reading.onread } : {}) });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const reader = new SocketReader(socket, 'the test server');
  reading?.bind(reader);
  return { socket, reader };
}

for (const reused of [false, true]) {
  test(`${reused ? 'a reused read buffer' : 'per-read buffers'}: small and large reads, immediate and after a backlog, return the bytes sent`, async () => {
    const { socket, reader } = await connect(reused);
    try {
      const got = Buffer.alloc(SENT.length);
      let at = 0;
      // Headers and payloads as a parser reads them: a few bytes, then a big buffer.
      for (const n of [4, 16, 3 * MiB, 1, 8, 700 * 1024]) {
        got.set(await reader.read(n), at);
        at += n;
      }
      // Let the server's bytes pile up (paused at the high-water mark), then drain them.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const shared = new Uint8Array(new SharedArrayBuffer(SENT.length - at));
      await reader.readInto(shared);
      got.set(shared, at);
      assert.ok(got.equals(SENT), 'every byte as sent, in order');
      await assert.rejects(reader.read(1), /closed the connection/);
    } finally {
      socket.destroy();
    }
  });
}
