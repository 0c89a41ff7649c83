/**
 * Coffer's NBD server against clients that break the rules, over raw sockets: every bad
 * input gets an NBD error or a closed connection, never a crash or a hang, and the server
 * goes on serving everyone else.
 */
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { RawImage } from '../../disk/index.js';
import { isCofferError } from '../../errors/index.js';
import { makeTempDir, seededBytes } from '../../testing/index.js';
import { NbdClient, NbdServer } from '../index.js';
import { ChunkType, Command, CommandFlag, NbdErrno, Option, OptionReply, ReplyFlag } from '../protocol/constants.js';
import { encodeInfoRequest, encodeMetaContextRequest, encodeOption } from '../protocol/handshake.js';
import { decodeBlockStatus, decodeErrorChunk, decodeHole, encodeRequest, type RequestHeader } from '../protocol/transmission.js';
import { RawPeer, type RawReply } from '../testing/raw-peer.js';

const MiB = 1024 * 1024;
let dir: { path: string; remove(): Promise<void> };
let disk: RawImage;
let server: NbdServer;
let socketPath: string;
const errors: unknown[] = [];
const peers: RawPeer[] = [];

before(async () => {
  dir = await makeTempDir('coffer-nbd-hostile-client');
  const file = path.join(dir.path, 'disk.raw');
  const handle = await open(file, 'w+');
  await handle.truncate(4 * MiB);
  await handle.write(seededBytes(1, MiB), 0, MiB, 0); // data, then a 3 MiB hole
  await handle.close();
  disk = await RawImage.open(file);
  socketPath = path.join(dir.path, 's.sock');
  server = await NbdServer.listen({ socket: socketPath }, {
    exports: { disk: { device: disk } }, handshakeTimeoutMs: 300, maxInFlight: 4, writeStallMs: 300, onClientError: (e) => errors.push(e),
  });
});

afterEach(() => {
  for (const peer of peers.splice(0)) peer.destroy();
});

after(async () => {
  await server?.close();
  await disk?.close();
  await dir?.remove();
});

async function peer(): Promise<RawPeer> {
  const p = await RawPeer.connect(socketPath);
  peers.push(p);
  return p;
}

const request = (fields: Partial<RequestHeader>): Buffer => encodeRequest({ flags: 0, type: Command.READ, cookie: 1n, offset: 0, length: 512, ...fields });
const errnoOf = (reply: RawReply): number => (reply.kind === 'simple' ? reply.error : decodeErrorChunk(reply.type, reply.payload).error);

/** The server still serves a well-behaved client. */
async function stillServes(): Promise<void> {
  const client = await NbdClient.connect(`nbd+unix:///disk?socket=${socketPath}`);
  try {
    assert.ok(Buffer.from(await client.read(0, 4096)).equals(seededBytes(1, 4096)));
  } finally {
    await client.close();
  }
}

/** Waits until the server has reported `n` more client errors, and returns them. */
async function reported(since: number, n = 1): Promise<unknown[]> {
  for (let i = 0; i < 100 && errors.length < since + n; i++) await new Promise((r) => setTimeout(r, 10));
  return errors.slice(since);
}

test('handshake abuse ends that connection only, with a protocol error reported', async () => {
  const cases: [string, (p: RawPeer) => Promise<void>, string][] = [
    ['unknown client flags', async (p) => void (await p.greet(0x10)), 'E_PROTOCOL'],
    ['an option without IHAVEOPT', async (p) => {
      await p.greet();
      p.write(Buffer.alloc(16, 0x41));
    }, 'E_PROTOCOL'],
    ['an option claiming 2 GiB of data', async (p) => {
      await p.greet();
      const header = encodeOption(Option.LIST);
      header.writeUInt32BE(0x80000000, 12);
      p.write(header);
    }, 'E_PROTOCOL'],
    ['NBD_OPT_EXPORT_NAME of an unknown export', async (p) => {
      await p.greet();
      p.write(encodeOption(Option.EXPORT_NAME, Buffer.from('nope')));
    }, 'E_PROTOCOL'],
    ['silence after the greeting', async (p) => void (await p.greet()), 'E_TIMEOUT'],
    ['silence before the client flags', async () => undefined, 'E_TIMEOUT'],
  ];
  for (const [name, abuse, code] of cases) {
    const since = errors.length;
    const p = await peer();
    await abuse(p);
    assert.ok(await p.closesWithin(2000), `${name}: connection closed`);
    const got = await reported(since);
    assert.equal(got.length, 1, name);
    assert.ok(isCofferError(got[0], code as 'E_PROTOCOL'), `${name}: ${String(got[0])}`);
  }
  await stillServes();
});

test('bad options get error replies and the haggling goes on', async () => {
  const p = await peer();
  const flags = await p.greet();
  assert.equal(flags, 3, 'FIXED_NEWSTYLE | NO_ZEROES');
  const cases: [string, number, Uint8Array | undefined, number][] = [
    ['GO for an unknown export', Option.GO, encodeInfoRequest({ name: 'nope', infos: [] }), OptionReply.ERR_UNKNOWN],
    ['GO with a name longer than its data', Option.GO, Buffer.from('000000ff6100', 'hex'), OptionReply.ERR_INVALID],
    ['INFO with trailing bytes', Option.INFO, Buffer.concat([encodeInfoRequest({ name: 'disk', infos: [] }), Buffer.from([1])]), OptionReply.ERR_INVALID],
    ['LIST with data', Option.LIST, Buffer.from('x'), OptionReply.ERR_INVALID],
    ['SET_META_CONTEXT before structured replies', Option.SET_META_CONTEXT, encodeMetaContextRequest({ exportName: 'disk', queries: ['base:allocation'] }), OptionReply.ERR_INVALID],
    ['STARTTLS', Option.STARTTLS, undefined, OptionReply.ERR_UNSUP],
    ['an unknown option', 99, Buffer.from('abc'), OptionReply.ERR_UNSUP],
  ];
  for (const [name, option, data, expected] of cases) {
    const replies = await p.option(option, data);
    assert.deepEqual(replies.map((r) => r.type), [expected], name);
  }
  assert.deepEqual((await p.option(Option.STRUCTURED_REPLY)).map((r) => r.type), [OptionReply.ACK]);
  assert.deepEqual((await p.option(Option.STRUCTURED_REPLY)).map((r) => r.type), [OptionReply.ERR_INVALID], 'twice');
  const list = await p.option(Option.LIST_META_CONTEXT, encodeMetaContextRequest({ exportName: 'disk', queries: [] }));
  assert.deepEqual(list.map((r) => r.type), [OptionReply.META_CONTEXT, OptionReply.ACK]);
  const bad = await p.option(Option.SET_META_CONTEXT, encodeMetaContextRequest({ exportName: 'disk', queries: ['x-other:thing', 'base:nothing'] }));
  assert.deepEqual(bad.map((r) => r.type), [OptionReply.ACK], 'unknown contexts are ignored');
  const info = await p.option(Option.INFO, encodeInfoRequest({ name: 'disk', infos: [] }));
  assert.deepEqual(info.map((r) => r.type), [OptionReply.INFO, OptionReply.INFO, OptionReply.ACK], 'export and block size');
  assert.deepEqual((await p.option(Option.ABORT)).map((r) => r.type), [OptionReply.ACK]);
  assert.ok(await p.closesWithin(1000));
});

test('more options than allowed without choosing an export end the connection', async () => {
  const since = errors.length;
  const p = await peer();
  await p.greet();
  p.write(Buffer.concat(Array.from({ length: 1025 }, () => encodeOption(99))));
  const drain = (async () => {
    for (;;) await p.optionReply();
  })().catch(() => undefined);
  assert.ok(await p.closesWithin(3000));
  await drain;
  assert.ok(isCofferError((await reported(since))[0], 'E_PROTOCOL'));
});

test('NBD_OPT_EXPORT_NAME enters transmission with the short reply when NO_ZEROES', async () => {
  const p = await peer();
  await p.greet();
  p.write(encodeOption(Option.EXPORT_NAME, Buffer.from('disk')));
  const reply = await p.read(10);
  assert.equal(Number(reply.readBigUInt64BE(0)), 4 * MiB);
  p.write(request({ offset: 100, length: 16, cookie: 77n }));
  const simple = await p.reply();
  assert.deepEqual(simple, { kind: 'simple', error: 0, cookie: 77n });
  assert.ok((await p.read(16)).equals(seededBytes(1, 116).subarray(100)));
});

test('a structured read sends data chunks and a hole chunk, then NONE with DONE', async () => {
  const p = await peer();
  await p.open('disk', { structured: true });
  p.write(request({ offset: MiB - 4096, length: 8192, cookie: 5n }));
  const chunks: RawReply[] = [];
  for (;;) {
    const reply = await p.reply();
    chunks.push(reply);
    if (reply.kind === 'simple' || (reply.flags & ReplyFlag.DONE) !== 0) break;
  }
  assert.deepEqual(chunks.map((c) => (c.kind === 'chunk' ? c.type : -1)), [ChunkType.OFFSET_DATA, ChunkType.OFFSET_HOLE, ChunkType.NONE]);
  const [data, hole] = chunks as [RawReply & { kind: 'chunk' }, RawReply & { kind: 'chunk' }];
  assert.equal(Number(data.payload.readBigUInt64BE(0)), MiB - 4096);
  assert.ok(data.payload.subarray(8).equals(seededBytes(1, MiB).subarray(MiB - 4096)));
  assert.deepEqual(decodeHole(hole.payload), { offset: MiB, length: 4096 });
});

test('bad requests get NBD errors, and the connection goes on', async () => {
  for (const structured of [true, false]) {
    const p = await peer();
    await p.open('disk', { structured, allocation: structured });
    const cases: [string, Buffer, number][] = [
      ['a read past the end', request({ offset: 4 * MiB - 512, length: 1024 }), NbdErrno.EINVAL],
      ['a read at 2^64 − 1', request({ offset: Number.MAX_SAFE_INTEGER, length: 1 }), NbdErrno.EINVAL],
      ['a write to a read-only export (its payload is skipped)', Buffer.concat([request({ type: Command.WRITE, length: 1000 }), Buffer.alloc(1000, 7)]), NbdErrno.EPERM],
      ['write zeroes on a read-only export', request({ type: Command.WRITE_ZEROES }), NbdErrno.EPERM],
      ['trim on a read-only export', request({ type: Command.TRIM }), NbdErrno.EPERM],
      ['an unknown command', request({ type: 42 }), NbdErrno.EINVAL],
      ['a flag the command does not take', request({ flags: CommandFlag.DF }), NbdErrno.EINVAL],
      ['a flush with a length', request({ type: Command.FLUSH, length: 5 }), NbdErrno.EINVAL],
      ['a read over the maximum payload', request({ length: 64 * MiB, offset: 0 }), NbdErrno.EINVAL],
    ];
    if (!structured) cases.push(['block status without a context', request({ type: Command.BLOCK_STATUS }), NbdErrno.EINVAL]);
    for (const [name, bytes, errno] of cases) {
      p.write(bytes);
      const reply = await p.reply();
      assert.equal(reply.cookie, 1n, name);
      assert.equal(errnoOf(reply), errno, `${name} (${structured ? 'structured' : 'simple'})`);
      if (reply.kind === 'chunk') assert.ok((reply.flags & ReplyFlag.DONE) !== 0);
    }
    p.write(request({ offset: 0, length: 4, cookie: 9n }));
    const ok = await p.reply();
    assert.equal(ok.cookie, 9n);
  }
});

test('block status with REQ_ONE gives one descriptor no longer than asked', async () => {
  const p = await peer();
  await p.open('disk', { structured: true, allocation: true });
  p.write(request({ type: Command.BLOCK_STATUS, flags: CommandFlag.REQ_ONE, offset: MiB - 512, length: 4096 }));
  const reply = await p.reply();
  assert.ok(reply.kind === 'chunk' && reply.type === ChunkType.BLOCK_STATUS);
  assert.deepEqual(decodeBlockStatus(reply.payload).descriptors, [{ length: 512, flags: 0 }]);
  p.write(request({ type: Command.BLOCK_STATUS, offset: MiB - 512, length: 4096 }));
  const all = await p.reply();
  assert.ok(all.kind === 'chunk');
  assert.deepEqual(decodeBlockStatus(all.payload).descriptors, [{ length: 512, flags: 0 }, { length: 3584, flags: 3 }]);
});

test('many pipelined requests, beyond the bound in flight, are each answered once', async () => {
  const p = await peer();
  await p.open('disk');
  p.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => request({ cookie: BigInt(1000 + i), offset: i * 4096, length: 4096 }))));
  const seen = new Set<bigint>();
  for (let i = 0; i < 100; i++) {
    const reply = await p.reply();
    assert.ok(reply.kind === 'simple' && reply.error === 0);
    const data = await p.read(4096);
    const index = Number(reply.cookie - 1000n);
    assert.ok(data.equals(seededBytes(1, MiB).subarray(index * 4096, index * 4096 + 4096)), `reply ${index}`);
    seen.add(reply.cookie);
  }
  assert.equal(seen.size, 100);
});

test('transmission abuse that cannot be answered ends the connection', async () => {
  const cases: [string, (p: RawPeer) => void, string | undefined][] = [
    ['a request with a bad magic', (p) => p.write(Buffer.alloc(28, 0x55)), 'E_PROTOCOL'],
    ['a write of 1 GiB', (p) => p.write(request({ type: Command.WRITE, length: 2 ** 30 })), 'E_PROTOCOL'],
    ['a client that vanishes in the middle of a write payload', (p) => {
      p.write(Buffer.concat([request({ type: Command.WRITE, length: 4096 }), Buffer.alloc(100)]));
      setTimeout(() => p.destroy(), 20);
    }, 'E_CONNECTION_FAILED'],
  ];
  for (const [name, abuse, code] of cases) {
    const since = errors.length;
    const p = await peer();
    await p.open('disk');
    abuse(p);
    assert.ok(await p.closesWithin(2000), name);
    const got = await reported(since);
    assert.ok(got.some((e) => isCofferError(e, code as 'E_PROTOCOL')), `${name}: ${got.map(String).join('; ')}`);
  }
  await stillServes();
});

test('a client that never reads its replies is dropped once the socket stays full', async () => {
  const since = errors.length;
  const p = await peer();
  await p.open('disk', { structured: true });
  p.socket.pause(); // read nothing
  p.write(Buffer.concat(Array.from({ length: 64 }, (_, i) => request({ cookie: BigInt(i), offset: 0, length: MiB }))));
  const got = await reported(since);
  assert.ok(got.some((e) => isCofferError(e, 'E_TIMEOUT')), got.map(String).join('; '));
  p.socket.resume(); // a paused socket does not notice its end
  assert.ok(await p.closesWithin(5000), 'closed');
  await stillServes();
  for (let i = 0; i < 100 && server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(server.connectionCount, 0, 'every connection ended on the server side too');
});
