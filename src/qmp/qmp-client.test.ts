/**
 * QmpClient against a scripted peer on a unix socket: what no real QEMU will do on demand
 * (answers out of order, split anywhere, malformed, oversized, silent, closed mid-command).
 * The same behaviours against a real QEMU are in qmp-client.integ.test.ts.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { QmpClient } from './qmp-client.js';
import { isQmpCommandError } from './qmp-command-error.js';
import type { QmpEvent } from './qmp-message.js';

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"}, "capabilities": ["oob"]}}\r\n';
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'coffer-qmp-fake-'));
after(() => fs.rm(dir, { recursive: true, force: true }));

interface Request {
  execute: string;
  arguments?: Record<string, unknown>;
  id: number;
}

/** The peer's side of one connection: the requests it reads, and its socket to answer on. */
interface PeerConnection {
  socket: net.Socket;
  next(): Promise<Request>;
  /** Sends one message (object → JSON + CRLF). */
  send(message: object): void;
}

let peers = 0;
/** A unix server running `script` for each connection; closed, with its sockets, after the test. */
async function fakePeer(t: { after(fn: () => Promise<void> | void): void }, script: (peer: PeerConnection) => Promise<void> | void): Promise<string> {
  const socketPath = path.join(dir, `peer${peers++}.sock`);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {}); // the client may reset the connection
    const queue: Request[] = [];
    const waiting: ((r: Request) => void)[] = [];
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const request = JSON.parse(buffered.slice(0, nl)) as Request;
        buffered = buffered.slice(nl + 1);
        const w = waiting.shift();
        if (w) w(request);
        else queue.push(request);
      }
    });
    const peer: PeerConnection = {
      socket,
      next: () => new Promise((resolve) => {
        const r = queue.shift();
        if (r) resolve(r);
        else waiting.push(resolve);
      }),
      send: (message) => socket.write(`${JSON.stringify(message)}\r\n`),
    };
    void Promise.resolve(script(peer)).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return socketPath;
}

/** Greets and accepts `qmp_capabilities`. */
async function negotiate(peer: PeerConnection): Promise<void> {
  peer.socket.write(GREETING);
  const request = await peer.next();
  assert.equal(request.execute, 'qmp_capabilities');
  assert.equal(request.arguments, undefined);
  peer.send({ return: {}, id: request.id });
}

const rejectsWith = (code: string, pattern: RegExp) => (err: unknown): boolean => {
  assert.ok(isCofferError(err), `not a CofferError: ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, pattern);
  return true;
};

test('greeting split byte by byte, then commands in flight answered out of order, events between', async (t) => {
  const socketPath = await fakePeer(t, async (peer) => {
    for (const byte of Buffer.from(GREETING)) {
      peer.socket.write(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    const caps = await peer.next();
    peer.send({ return: {}, id: caps.id });
    const requests = [await peer.next(), await peer.next(), await peer.next()];
    assert.deepEqual(requests.map((r) => r.execute), ['a', 'b', 'c']);
    assert.deepEqual(requests[1]?.arguments, { x: [1, { y: 'z' }] });
    // One chunk: a reply to an id never sent (dropped), the answers in reverse, an event among them.
    const [a, b, c] = requests as [Request, Request, Request];
    peer.socket.write(
      `{"return": "nobody", "id": 999}\r\n{"return": "C", "id": ${c.id}}\r\n` +
      '{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n' +
      `{"return": {"b": true}, "id": ${b.id}}\r\n{"id": ${a.id}, "error": {"class": "GenericError", "desc": "nope"}}\r\n`,
    );
  });
  const qmp = await QmpClient.connect({ path: socketPath });
  t.after(() => qmp.close());
  assert.deepEqual(qmp.greeting, { version: { major: 7, minor: 2, micro: 0, package: 'fake' }, capabilities: ['oob'] });
  const events: QmpEvent[] = [];
  qmp.on('STOP', (e) => events.push(e));
  const a = qmp.execute('a');
  const b = qmp.execute('b', { x: [1, { y: 'z' }] });
  const c = qmp.execute('c');
  assert.equal(await c, 'C');
  assert.deepEqual(events, [{ event: 'STOP', data: {}, timestampMicros: 1_000_002 }]);
  assert.deepEqual(await b, { b: true });
  await assert.rejects(a, (err) => {
    assert.ok(isQmpCommandError(err, 'GenericError'));
    assert.equal(err.code, 'E_QMP_ERROR');
    assert.equal(err.command, 'a');
    assert.equal(err.desc, 'nope');
    assert.equal(err.message, 'QEMU refused a: nope (GenericError)');
    return true;
  });
  assert.equal(qmp.closed, false);
});

test('a peer that never greets: E_TIMEOUT from connect, with the one-client hint', async (t) => {
  const socketPath = await fakePeer(t, () => {});
  const started = Date.now();
  await assert.rejects(QmpClient.connect({ path: socketPath }, { timeoutMs: 200 }),
    rejectsWith('E_TIMEOUT', /did not answer the greeting within 200 ms \(QEMU serves one client per monitor/));
  assert.ok(Date.now() - started < 2000);
});

test('a peer that greets but never negotiates: E_TIMEOUT naming qmp_capabilities', async (t) => {
  const socketPath = await fakePeer(t, (peer) => void peer.socket.write(GREETING));
  await assert.rejects(QmpClient.connect({ path: socketPath }, { timeoutMs: 200 }), rejectsWith('E_TIMEOUT', /did not answer qmp_capabilities/));
});

test('a peer that is not a QMP server: E_PROTOCOL from connect', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['garbage', 'SSH-2.0-OpenSSH_9.2\r\n', /sent a line that is not JSON: "SSH-2.0-OpenSSH_9.2"/],
    ['a reply first', '{"return": {}}\r\n', /sent a return before its greeting: it is not a QMP server/],
    ['a broken greeting', '{"QMP": {"version": 7}}\r\n', /QMP\.version should be an object/],
    ['an endless line', 'x'.repeat(70_000), /longer than 65536 bytes/],
  ];
  for (const [name, bytes, why] of cases) {
    const socketPath = await fakePeer(t, (peer) => void peer.socket.write(bytes));
    await assert.rejects(QmpClient.connect({ path: socketPath }, { timeoutMs: 2000, maxMessageBytes: 65536 }), rejectsWith('E_PROTOCOL', why), name);
  }
});

test('a peer that refuses qmp_capabilities: E_QMP_ERROR from connect', async (t) => {
  const socketPath = await fakePeer(t, async (peer) => {
    peer.socket.write(GREETING);
    const r = await peer.next();
    peer.send({ error: { class: 'CommandNotFound', desc: 'no' }, id: r.id });
  });
  await assert.rejects(QmpClient.connect({ path: socketPath }), (err) => isQmpCommandError(err, 'CommandNotFound'));
});

test('nothing listening: E_CONNECTION_FAILED naming the socket', async () => {
  const missing = path.join(dir, 'nobody.sock');
  await assert.rejects(QmpClient.connect({ path: missing }), rejectsWith('E_CONNECTION_FAILED', /QMP at .*nobody\.sock cannot be reached: ENOENT/));
  await assert.rejects(QmpClient.connect({ host: '127.0.0.1', port: 1 }), rejectsWith('E_CONNECTION_FAILED', /QMP at 127\.0\.0\.1:1 cannot be reached: ECONNREFUSED/));
});

test('a peer that closes mid-command fails every pending command and every waiter', async (t) => {
  let peerSocket: net.Socket | undefined;
  const socketPath = await fakePeer(t, async (peer) => {
    await negotiate(peer);
    peerSocket = peer.socket;
  });
  const qmp = await QmpClient.connect({ path: socketPath });
  const first = qmp.execute('query-status');
  const second = qmp.execute('query-block');
  const waiter = qmp.waitForEvent('SHUTDOWN');
  const abandoned = qmp.waitForEvent('RESET'); // never awaited: must not become an unhandled rejection
  void abandoned;
  await new Promise((r) => setTimeout(r, 20));
  peerSocket?.end();
  await assert.rejects(first, rejectsWith('E_CONNECTION_FAILED', /closed the connection \(before answering query-status\)/));
  await assert.rejects(second, rejectsWith('E_CONNECTION_FAILED', /before answering query-block/));
  await assert.rejects(waiter, rejectsWith('E_CONNECTION_FAILED', /before answering event SHUTDOWN/));
  assert.equal(qmp.closed, true);
  assert.equal((await qmp.whenClosed).code, 'E_CONNECTION_FAILED');
  await assert.rejects(qmp.execute('query-status'), rejectsWith('E_CONNECTION_FAILED', /closed the connection/));
  await qmp.close();
  await qmp.close();
});

test('a command the peer never answers: E_TIMEOUT; the connection stays usable and the late reply is dropped', async (t) => {
  const socketPath = await fakePeer(t, async (peer) => {
    await negotiate(peer);
    const slow = await peer.next();
    const fast = await peer.next();
    await new Promise((r) => setTimeout(r, 150));
    peer.send({ return: 'late', id: slow.id });
    peer.send({ return: 'fast', id: fast.id });
  });
  const qmp = await QmpClient.connect({ path: socketPath });
  t.after(() => qmp.close());
  await assert.rejects(qmp.execute('slow', undefined, { timeoutMs: 50 }), rejectsWith('E_TIMEOUT', /did not answer slow within 50 ms/));
  assert.equal(await qmp.execute('fast'), 'fast');
  assert.equal(qmp.closed, false);
});

test('the default command timeout applies when a call gives none', async (t) => {
  const socketPath = await fakePeer(t, negotiate);
  const qmp = await QmpClient.connect({ path: socketPath }, { commandTimeoutMs: 80 });
  t.after(() => qmp.close());
  await assert.rejects(qmp.execute('query-status'), rejectsWith('E_TIMEOUT', /within 80 ms/));
  await assert.rejects(qmp.waitForEvent('STOP'), rejectsWith('E_TIMEOUT', /did not answer event STOP within 80 ms/));
});

test('malformed replies mid-session end the connection with E_PROTOCOL for every pending command', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"return": {}, "id": \r\n', /not JSON/],
    ['no return nor error', '{"id": 1}\r\n', /neither a greeting, a reply nor an event/],
    ['error without class', '{"error": {"desc": "d"}, "id": 1}\r\n', /error\.class should be a string/],
    ['a reply without id', '{"error": {"class": "GenericError", "desc": "JSON parse error"}}\r\n', /answered without an id \(it could not read a command: JSON parse error\)/],
    ['a second greeting', GREETING, /sent a second greeting/],
  ];
  for (const [name, line, why] of cases) {
    const socketPath = await fakePeer(t, async (peer) => {
      await negotiate(peer);
      await peer.next();
      await peer.next();
      peer.socket.write(line);
    });
    const qmp = await QmpClient.connect({ path: socketPath });
    const one = qmp.execute('one');
    const two = qmp.execute('two');
    await assert.rejects(one, rejectsWith('E_PROTOCOL', why), name);
    await assert.rejects(two, rejectsWith('E_PROTOCOL', /before answering two/), name);
    assert.equal(qmp.closed, true);
    await qmp.close();
  }
});

test('a message over 16 MiB (the default bound) ends the connection without buffering it all', async (t) => {
  const socketPath = await fakePeer(t, async (peer) => {
    await negotiate(peer);
    const r = await peer.next();
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    peer.socket.write(`{"id": ${r.id}, "return": "`);
    for (let i = 0; i < 17 && !peer.socket.destroyed; i++) {
      if (!peer.socket.write(chunk)) await new Promise((resolve) => { peer.socket.once('drain', resolve); peer.socket.once('close', resolve); });
    }
  });
  const qmp = await QmpClient.connect({ path: socketPath });
  await assert.rejects(qmp.execute('query-qmp-schema'), rejectsWith('E_PROTOCOL', /sent a message longer than 16777216 bytes/));
  await qmp.close();
});

test('waitForEvent counts from the call, filters by predicate, and on() subscriptions end when asked', async (t) => {
  let peer!: PeerConnection;
  const socketPath = await fakePeer(t, async (p) => {
    peer = p;
    await negotiate(p);
  });
  const qmp = await QmpClient.connect({ path: socketPath });
  t.after(() => qmp.close());
  const event = (name: string, data: object) => peer.send({ event: name, data, timestamp: { seconds: 1, microseconds: 0 } });
  const all: string[] = [];
  const jobs: string[] = [];
  qmp.on('*', (e) => all.push(e.event));
  const stop = qmp.on('BLOCK_JOB_CANCELLED', (e) => jobs.push(String(e.data['device'])));
  event('BLOCK_JOB_CANCELLED', { device: 'early' });
  await new Promise((r) => setTimeout(r, 30));
  const wanted = qmp.waitForEvent('BLOCK_JOB_CANCELLED', (e) => e.data['device'] === 'job1');
  event('BLOCK_JOB_CANCELLED', { device: 'early' }); // same name, other job: not it
  event('RESUME', {});
  event('BLOCK_JOB_CANCELLED', { device: 'job1' });
  const got = await wanted;
  assert.equal(got.data['device'], 'job1');
  stop();
  const mark = qmp.waitForEvent('MARK');
  event('BLOCK_JOB_CANCELLED', { device: 'after' });
  event('MARK', {});
  await mark; // events arrive in order: 'after' has been delivered by now
  assert.deepEqual(jobs, ['early', 'early', 'job1']);
  assert.deepEqual(all.slice(0, 4), ['BLOCK_JOB_CANCELLED', 'BLOCK_JOB_CANCELLED', 'RESUME', 'BLOCK_JOB_CANCELLED']);
});

test('an abort signal interrupts a command and an event wait', async (t) => {
  const socketPath = await fakePeer(t, negotiate);
  const qmp = await QmpClient.connect({ path: socketPath });
  t.after(() => qmp.close());
  const controller = new AbortController();
  const command = qmp.execute('stop', undefined, { signal: controller.signal });
  const waiter = qmp.waitForEvent('STOP', undefined, { signal: controller.signal });
  controller.abort();
  await assert.rejects(command, rejectsWith('E_INTERRUPTED', /stop was interrupted/));
  await assert.rejects(waiter, rejectsWith('E_INTERRUPTED', /event STOP was interrupted/));
  await assert.rejects(qmp.execute('cont', undefined, { signal: controller.signal }), rejectsWith('E_INTERRUPTED', /cont/));
  assert.equal(qmp.closed, false);
});

test('close() while commands are pending rejects them, and is idempotent', async (t) => {
  const socketPath = await fakePeer(t, negotiate);
  const qmp = await QmpClient.connect({ path: socketPath });
  const pending = qmp.execute('query-status');
  await Promise.all([qmp.close(), qmp.close()]);
  await assert.rejects(pending, rejectsWith('E_CONNECTION_FAILED', /was closed by Coffer \(before answering query-status\)/));
  assert.equal(qmp.closed, true);
  await qmp.close();
});
