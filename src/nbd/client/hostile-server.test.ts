/**
 * Coffer's NBD client against servers that break the rules, scripted over raw sockets (no real
 * server misbehaves on demand): every bad reply is a clear CofferError, the connection ends on
 * protocol violations and every request in flight fails with it; nothing hangs.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError, type ErrorCode } from '../../errors/index.js';
import { makeTempDir } from '../../testing/index.js';
import { NbdClient, type NbdClientOptions } from '../index.js';
import { ChunkType, Info, Option, OptionReply, ReplyFlag, TransmissionFlag } from '../protocol/constants.js';
import { decodeOptionHeader, encodeGreeting, encodeInfoReply, encodeMetaContextReply, encodeOptionReply } from '../protocol/handshake.js';
import {
  decodeRequest,
  encodeBlockStatus,
  encodeChunkHeader,
  encodeErrorChunk,
  encodeOffset,
  encodeSimpleReply,
  type RequestHeader,
} from '../protocol/transmission.js';
import { SocketReader } from '../socket-reader.js';
import { RawPeer } from '../testing/raw-peer.js';

const SIZE = 1024 * 1024;
const CONTEXT_ID = 7;
let dir: { path: string; remove(): Promise<void> };
const servers: Server[] = [];

before(async () => {
  dir = await makeTempDir('coffer-nbd-hostile-server');
});

after(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  await dir?.remove();
});

/** A server on a fresh socket that runs `script` for each connection. */
async function scripted(script: (p: RawPeer) => Promise<void>): Promise<string> {
  const socketPath = path.join(dir.path, `${servers.length}.sock`);
  const server = createServer((socket) => {
    const p = new RawPeer(socket, new SocketReader(socket, 'the client'));
    script(p).catch(() => undefined).finally(() => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return `nbd+unix:///disk?socket=${socketPath}`;
}

/** The server's side of a normal handshake: structured replies, base:allocation as CONTEXT_ID. */
async function handshake(p: RawPeer, options: { blockSize?: [number, number, number] } = {}): Promise<void> {
  p.write(encodeGreeting(3));
  await p.read(4);
  for (;;) {
    const { option, length } = decodeOptionHeader(await p.read(16));
    await p.read(length);
    if (option === Option.SET_META_CONTEXT) p.write(encodeOptionReply(option, OptionReply.META_CONTEXT, encodeMetaContextReply({ id: CONTEXT_ID, name: 'base:allocation' })));
    if (option === Option.GO) {
      p.write(encodeOptionReply(option, OptionReply.INFO, encodeInfoReply({ type: Info.EXPORT, size: SIZE, flags: TransmissionFlag.HAS_FLAGS | TransmissionFlag.READ_ONLY })));
      if (options.blockSize !== undefined) {
        const [minimum, preferred, maximumPayload] = options.blockSize;
        p.write(encodeOptionReply(option, OptionReply.INFO, encodeInfoReply({ type: Info.BLOCK_SIZE, sizes: { minimum, preferred, maximumPayload } })));
      }
      p.write(encodeOptionReply(option, OptionReply.ACK));
      return;
    }
    p.write(encodeOptionReply(option, OptionReply.ACK));
  }
}

const nextRequest = async (p: RawPeer): Promise<RequestHeader> => decodeRequest(await p.read(28));
const chunk = (cookie: bigint, type: number, flags: number, payload: Buffer): Buffer => Buffer.concat([encodeChunkHeader({ cookie, type, flags, length: payload.length }), payload]);
const data = (cookie: bigint, offset: number, length: number, flags = ReplyFlag.DONE): Buffer => chunk(cookie, ChunkType.OFFSET_DATA, flags, Buffer.concat([encodeOffset(offset), Buffer.alloc(length, 1)]));
const fails = (code: ErrorCode, message?: RegExp) => (e: unknown): boolean => {
  assert.ok(isCofferError(e, code), `expected ${code}, got ${String(e)}`);
  if (message !== undefined) assert.match((e as Error).message, message);
  return true;
};
const quick: NbdClientOptions = { handshakeTimeoutMs: 300, requestTimeoutMs: 300, metaContexts: ['base:allocation'] };

test('handshakes that go wrong fail to connect with the reason', async () => {
  const replyTo = (option: number, type: number, data = Buffer.alloc(0)): Buffer => encodeOptionReply(option, type, data);
  const cases: [string, (p: RawPeer) => Promise<void>, ErrorCode, RegExp][] = [
    ['not an NBD server', async (p) => p.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')), 'E_PROTOCOL', /not an NBD server/],
    ['an oldstyle server', async (p) => p.write(Buffer.from('4e42444d41474943000042028186125300000000001000000000000100', 'hex')), 'E_PROTOCOL', /oldstyle/],
    ['newstyle without FIXED_NEWSTYLE', async (p) => p.write(encodeGreeting(0)), 'E_PROTOCOL', /fixed newstyle/],
    ['a silent server', async () => undefined, 'E_TIMEOUT', /handshake within 300 ms/],
    ['a server that hangs up after the greeting', async (p) => {
      p.write(encodeGreeting(1));
      await p.read(4);
      p.destroy();
    }, 'E_CONNECTION_FAILED', /closed the connection/],
    ['an option reply of 1 GiB', async (p) => {
      p.write(encodeGreeting(1));
      await p.read(4 + 16);
      const header = replyTo(Option.STRUCTURED_REPLY, OptionReply.ACK);
      header.writeUInt32BE(2 ** 30, 16);
      p.write(header);
    }, 'E_PROTOCOL', /option reply of 1073741824 bytes/],
    ['a reply to another option', async (p) => {
      p.write(encodeGreeting(1));
      await p.read(4 + 16);
      p.write(replyTo(Option.LIST, OptionReply.ACK));
    }, 'E_PROTOCOL', /reply to NBD_OPT_LIST/],
    ['a refused export', async (p) => {
      p.write(encodeGreeting(1));
      await p.read(4);
      for (;;) {
        const { option, length } = decodeOptionHeader(await p.read(16));
        await p.read(length);
        p.write(replyTo(option, option === Option.GO ? OptionReply.ERR_UNKNOWN : OptionReply.ACK, Buffer.from('gone')));
      }
    }, 'E_NBD_ERROR', /no export "disk" \(gone\)/],
    ['GO without NBD_INFO_EXPORT', async (p) => {
      p.write(encodeGreeting(1));
      await p.read(4);
      for (;;) {
        const { option, length } = decodeOptionHeader(await p.read(16));
        await p.read(length);
        p.write(replyTo(option, OptionReply.ACK));
      }
    }, 'E_PROTOCOL', /without NBD_INFO_EXPORT/],
    ['a minimum block size that is not a power of two', (p) => handshake(p, { blockSize: [3, 4096, 65536] }), 'E_PROTOCOL', /minimum block size 3/],
  ];
  for (const [name, script, code, message] of cases) {
    const uri = await scripted(script);
    await assert.rejects(NbdClient.connect(uri, quick), fails(code, message), name);
  }
});

/** A transmission-phase case: how the server answers the first read (1000 bytes at 4096). */
interface Case {
  name: string;
  respond: (p: RawPeer, request: RequestHeader) => Promise<void> | void;
  code: ErrorCode;
  message: RegExp;
  /** The connection survives (the error was for that request only). */
  survives?: boolean;
}

const cases: Case[] = [
  { name: 'a reply for a cookie nobody sent', respond: (p, r) => p.write(data(r.cookie + 100n, 4096, 1000)), code: 'E_PROTOCOL', message: /cookie/ },
  { name: 'data outside the request', respond: (p, r) => p.write(data(r.cookie, 4096 + 24, 1000)), code: 'E_PROTOCOL', message: /outside the read/ },
  { name: 'overlapping chunks', respond: (p, r) => p.write(Buffer.concat([data(r.cookie, 4096, 600, 0), data(r.cookie, 4096 + 500, 500)])), code: 'E_PROTOCOL', message: /overlaps/ },
  { name: 'DONE before the whole read was sent', respond: (p, r) => p.write(data(r.cookie, 4096, 999)), code: 'E_PROTOCOL', message: /only 999 bytes/ },
  {
    name: 'a data chunk claiming 4 GiB', code: 'E_PROTOCOL', message: /OFFSET_DATA chunk of 4294967287 bytes/,
    respond: (p, r) => p.write(encodeChunkHeader({ cookie: r.cookie, type: ChunkType.OFFSET_DATA, flags: 1, length: 0xffffffff })),
  },
  { name: 'a simple reply to a structured read', respond: (p, r) => p.write(encodeSimpleReply({ error: 0, cookie: r.cookie })), code: 'E_PROTOCOL', message: /simple reply to NBD_CMD_READ/ },
  { name: 'a chunk type nobody knows', respond: (p, r) => p.write(chunk(r.cookie, 77, 1, Buffer.alloc(4))), code: 'E_PROTOCOL', message: /unknown type 77/ },
  { name: 'block status in reply to a read', respond: (p, r) => p.write(chunk(r.cookie, ChunkType.BLOCK_STATUS, 1, encodeBlockStatus({ contextId: CONTEXT_ID, descriptors: [{ length: 512, flags: 0 }] }))), code: 'E_PROTOCOL', message: /unexpected BLOCK_STATUS/ },
  { name: 'garbage instead of a reply', respond: (p) => p.write(Buffer.from('garbage garbage garbage')), code: 'E_PROTOCOL', message: /magic 0x67617262/ },
  { name: 'a server that stops answering', respond: () => new Promise<void>(() => undefined), code: 'E_TIMEOUT', message: /did not answer NBD_CMD_READ of 1000 bytes at 4096 within 300 ms/ },
  { name: 'a server that dies', respond: (p) => p.destroy(), code: 'E_CONNECTION_FAILED', message: /closed the connection/ },
  { name: 'an error chunk', respond: (p, r) => p.write(chunk(r.cookie, ChunkType.ERROR, 1, encodeErrorChunk({ error: 5, message: 'disk on fire' }))), code: 'E_NBD_ERROR', message: /NBD_EIO \(disk on fire\)/, survives: true },
  { name: 'an unknown error chunk type', respond: (p, r) => p.write(chunk(r.cookie, 0x8abc, 1, encodeErrorChunk({ error: 28, message: '' }))), code: 'E_NBD_ERROR', message: /NBD_ENOSPC/, survives: true },
  { name: 'an error at an offset', respond: (p, r) => p.write(Buffer.concat([encodeChunkHeader({ cookie: r.cookie, type: ChunkType.ERROR_OFFSET, flags: 1, length: 14 }), encodeErrorChunk({ error: 22, message: '', offset: 4100 })])), code: 'E_NBD_ERROR', message: /NBD_EINVAL/, survives: true },
  { name: 'an error offset outside the request', respond: (p, r) => p.write(chunk(r.cookie, ChunkType.ERROR_OFFSET, 1, encodeErrorChunk({ error: 5, message: '', offset: 0 }))), code: 'E_PROTOCOL', message: /outside the request/ },
];

for (const c of cases) {
  test(`transmission: ${c.name}`, async () => {
    const uri = await scripted(async (p) => {
      await handshake(p);
      await c.respond(p, await nextRequest(p));
      // Whatever follows (only when the connection survives): answer correctly.
      for (;;) {
        const r = await nextRequest(p);
        if (r.type === 2) return;
        p.write(data(r.cookie, r.offset, r.length));
      }
    });
    const client = await NbdClient.connect(uri, quick);
    try {
      const bad = client.read(4096, 1000); // the server sees this one first
      const others = [client.read(0, 512), client.read(8192, 512)]; // in flight beside it
      for (const other of others) other.catch(() => undefined); // checked below
      await assert.rejects(bad, fails(c.code, c.message));
      if (c.survives === true) {
        assert.equal((await client.read(0, 16)).length, 16, 'the connection goes on');
        await Promise.all(others);
      } else {
        for (const other of others) await assert.rejects(other, fails(c.code));
        await assert.rejects(client.read(0, 16), fails(c.code), 'and so do later requests');
      }
    } finally {
      await client.close();
    }
  });
}

test('block status replies are checked: the context, REQ_ONE, and that every context answered', async () => {
  const uri = await scripted(async (p) => {
    await handshake(p);
    let r = await nextRequest(p);
    p.write(chunk(r.cookie, ChunkType.BLOCK_STATUS, 1, encodeBlockStatus({ contextId: CONTEXT_ID, descriptors: [{ length: 512, flags: 3 }, { length: SIZE, flags: 0 }] })));
    r = await nextRequest(p);
    p.write(chunk(r.cookie, ChunkType.NONE, 1, Buffer.alloc(0))); // no status at all
  });
  const client = await NbdClient.connect(uri, quick);
  try {
    const status = await client.blockStatus(0, 4096);
    assert.deepEqual(status.get('base:allocation'), [{ length: 512, flags: 3 }, { length: SIZE, flags: 0 }], 'the last descriptor may run past the request');
    await assert.rejects(client.blockStatus(0, 4096), fails('E_PROTOCOL', /without an answer for meta context 7/));
  } finally {
    await client.close();
  }
  const uri2 = await scripted(async (p) => {
    await handshake(p);
    const r = await nextRequest(p);
    p.write(chunk(r.cookie, ChunkType.BLOCK_STATUS, 1, encodeBlockStatus({ contextId: 99, descriptors: [{ length: 512, flags: 0 }] })));
  });
  const client2 = await NbdClient.connect(uri2, quick);
  try {
    await assert.rejects(client2.blockStatus(0, 4096), fails('E_PROTOCOL', /meta context 99, which was not selected/));
  } finally {
    await client2.close();
  }
  const uri3 = await scripted(async (p) => {
    await handshake(p);
    const r = await nextRequest(p);
    p.write(chunk(r.cookie, ChunkType.BLOCK_STATUS, 1, encodeBlockStatus({ contextId: CONTEXT_ID, descriptors: [{ length: 8192, flags: 0 }] })));
  });
  const client3 = await NbdClient.connect(uri3, quick);
  try {
    await assert.rejects(client3.blockStatus(0, 4096, { onlyOne: true }), fails('E_PROTOCOL', /REQ_ONE/));
  } finally {
    await client3.close();
  }
});

test('reads respect a server minimum block size by widening unaligned requests', async () => {
  const seen: [number, number][] = [];
  const uri = await scripted(async (p) => {
    await handshake(p, { blockSize: [4096, 4096, 65536] });
    for (;;) {
      const r = await nextRequest(p);
      if (r.type === 2) return;
      seen.push([r.offset, r.length]);
      p.write(Buffer.concat([encodeChunkHeader({ cookie: r.cookie, type: ChunkType.OFFSET_DATA, flags: 1, length: 8 + r.length }), encodeOffset(r.offset), Buffer.from(Array.from({ length: r.length }, (_, i) => (r.offset + i) % 251))]));
    }
  });
  const { NbdBlockDevice } = await import('../index.js');
  const device = await NbdBlockDevice.open(uri, { handshakeTimeoutMs: 300 });
  try {
    const got = await device.read(5000, 140_000);
    assert.ok(Buffer.from(got).equals(Buffer.from(Array.from({ length: 140_000 }, (_, i) => (5000 + i) % 251))));
    assert.ok(seen.every(([o, l]) => o % 4096 === 0 && l % 4096 === 0 && l <= 65536), JSON.stringify(seen));
  } finally {
    await device.close();
  }
});
