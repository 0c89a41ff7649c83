/**
 * S3Backend against a real Ceph RADOS Gateway (src/testing/ceph-s3.ts): the backend
 * conformance suite, multipart uploads, prefixes, error mapping (a quota is E_NO_SPACE),
 * retries through a gateway restart and through throttling (503 SlowDown from a proxy in
 * front of the gateway), and deadlines on a dead endpoint.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { freePort, startCephS3, type CephS3 } from '../../testing/index.js';
import { runBackendConformance } from './backend-conformance.js';
import { S3Backend, type S3BackendOptions } from './s3-backend.js';
import { parseS3Location } from './s3-location.js';

let s3: CephS3;
let bucket: string;
let prefixes = 0;
const made: S3Backend[] = [];

before(async () => {
  s3 = await startCephS3();
  bucket = await s3.createBucket('backend');
});
after(async () => {
  for (const backend of made) backend.destroy();
  await s3?.stop();
});

function backendAt(location: string, options: S3BackendOptions = {}): S3Backend {
  const backend = new S3Backend(parseS3Location(location), { credentials: s3.credentials, ...options });
  made.push(backend);
  return backend;
}

/** A backend under a fresh prefix of the test bucket: empty, like a new repository. */
function freshBackend(options: S3BackendOptions = {}): S3Backend {
  return backendAt(`s3:${s3.endpoint}/${bucket}/repo-${++prefixes}`, options);
}

runBackendConformance('s3', async () => freshBackend());

test('s3: create on a versioned bucket (Object Lock), where RGW ignores If-None-Match: the oldest version wins and stays current', async () => {
  const locked = await s3.createBucket('create-locked', undefined, { objectLock: true });
  const backend = backendAt(`s3:${s3.endpoint}/${locked}/repo`);
  const lock = backend.objectLock;
  const retention = { mode: 'GOVERNANCE' as const, until: new Date(Date.now() + 3_600_000) };
  const rivals = Array.from({ length: 6 }, (_, i) => Buffer.from(`config of init ${i} `.repeat(50)));
  const answers = await Promise.all(rivals.map((data, i) => (i % 2 === 0 ? lock.create('config', data, retention) : backend.create('config', data))));
  assert.equal(answers.filter(Boolean).length, 1, `exactly one create wins: ${answers.join(',')}`);
  assert.deepEqual(await backend.get('config'), rivals[answers.indexOf(true)], 'the current version is the winner\'s');
  assert.equal(await lock.create('config', rivals[answers.indexOf(true)] as Buffer, retention), true, 'its own bytes again: true');
  assert.equal(await backend.create('config', Buffer.from('late')), false);
  assert.deepEqual(await backend.get('config'), rivals[answers.indexOf(true)]);
});

test('s3: objects live under the prefix; a sibling prefix sharing its first letters is not listed', async () => {
  const inner = backendAt(`s3:${s3.endpoint}/${bucket}/nest/a`);
  const sibling = backendAt(`s3:${s3.endpoint}/${bucket}/nest/ab`);
  const whole = backendAt(`s3:${s3.endpoint}/${bucket}/nest`);
  await inner.put('config', Buffer.from('inner'));
  await sibling.put('config', Buffer.from('sibling'));
  const keys = async (backend: S3Backend) => {
    const out: string[] = [];
    for await (const entry of backend.list('')) out.push(entry.key);
    return out.sort();
  };
  assert.deepEqual(await keys(inner), ['config']);
  assert.deepEqual(await keys(whole), ['a/config', 'ab/config']);
  assert.equal((await whole.get('a/config')).toString(), 'inner');
});

test('s3: list pages through every key (pages of 7 here, 1000 by default)', async () => {
  const backend = freshBackend({ listPageSize: 7 });
  const keys = Array.from({ length: 50 }, (_, i) => `chunks/${(i % 16).toString(16).padStart(2, '0')}/k${i}`);
  await Promise.all(keys.map((key) => backend.put(key, Buffer.from(key))));
  const seen = new Map<string, number>();
  for await (const entry of backend.list('chunks/')) seen.set(entry.key, entry.size);
  assert.deepEqual([...seen.keys()].sort(), [...keys].sort());
  assert.equal(seen.get('chunks/01/k17'), 'chunks/01/k17'.length);
});

test('s3: objects above the threshold go up in parts and come back whole', async () => {
  const partSize = 5 * 1024 * 1024;
  const backend = freshBackend({ multipartThreshold: 6 * 1024 * 1024, partSize });
  const data = randomBytes(2 * partSize + 12345);
  await backend.put('chunks/ab/big', data);
  assert.deepEqual(await backend.get('chunks/ab/big'), data);
  const listed = [];
  for await (const entry of backend.list('chunks/')) listed.push(entry);
  assert.deepEqual(listed, [{ key: 'chunks/ab/big', size: data.length }]);
  await backend.put('chunks/ab/big', data.subarray(0, 7 * 1024 * 1024)); // replaced whole
  assert.equal((await backend.get('chunks/ab/big')).length, 7 * 1024 * 1024);
});

test('s3: a missing bucket is E_REPO_NOT_FOUND; wrong keys are a one-line access error', async () => {
  const missing = backendAt(`s3:${s3.endpoint}/no-such-bucket-${randomBytes(3).toString('hex')}/p`);
  await assert.rejects(missing.get('config'), (e) => isCofferError(e, 'E_REPO_NOT_FOUND') && /does not exist/.test(e.message));
  await assert.rejects(async () => {
    for await (const entry of missing.list('')) void entry;
  }, (e) => isCofferError(e, 'E_REPO_NOT_FOUND'));
  const intruder = backendAt(`s3:${s3.endpoint}/${bucket}/p`, { credentials: { accessKeyId: s3.credentials.accessKeyId, secretAccessKey: 'wrong' } });
  await assert.rejects(intruder.put('config', Buffer.from('x')), (e) => isCofferError(e, 'E_BACKEND_IO') && /access denied/.test(e.message) && !e.message.includes('\n'));
});

test('s3: requests are retried while the gateway restarts, and succeed once it is back', async () => {
  const backend = freshBackend({ maxAttempts: 20 });
  await backend.put('snapshots/before', Buffer.from('x'));
  await s3.stopGateway();
  const restarted = (async () => {
    await new Promise((resolve) => setTimeout(resolve, 800));
    await s3.startGateway();
  })();
  const started = Date.now();
  await backend.put('snapshots/during', Buffer.from('y'));
  assert.equal((await backend.get('snapshots/before')).toString(), 'x');
  await restarted;
  assert.ok(Date.now() - started >= 700, 'the put waited for the gateway');
  assert.equal((await backend.get('snapshots/during')).toString(), 'y');
});

test('s3: a closed port and a silent peer fail within their deadlines with a one-line E_BACKEND_IO', async () => {
  const closed = backendAt(`s3:http://127.0.0.1:${await freePort()}/${bucket}/p`, { maxAttempts: 2 });
  await assert.rejects(closed.get('config'), (e) => isCofferError(e, 'E_BACKEND_IO') && /cannot be reached/.test(e.message));
  const sockets: net.Socket[] = [];
  const silent = net.createServer((socket) => sockets.push(socket)); // accepts, never answers
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const port = (silent.address() as net.AddressInfo).port;
    const stuck = backendAt(`s3:http://127.0.0.1:${port}/${bucket}/p`, { maxAttempts: 2, requestTimeoutMs: 300, idleTimeoutMs: 300 });
    const started = Date.now();
    await assert.rejects(stuck.has('config'), (e) => isCofferError(e, 'E_BACKEND_IO') && /did not answer in time/.test(e.message));
    assert.ok(Date.now() - started < 5000);
  } finally {
    for (const socket of sockets) socket.destroy();
    silent.close();
  }
});

test('s3: a full quota is E_NO_SPACE', async () => {
  const credentials = await s3.createUser({ maxSizeBytes: 100 * 1024 });
  const small = await s3.createBucket('quota', credentials);
  const backend = backendAt(`s3:${s3.endpoint}/${small}/p`, { credentials });
  await backend.put('chunks/00/fits', Buffer.alloc(50_000, 1));
  await assert.rejects(backend.put('chunks/00/too-big', Buffer.alloc(200_000, 2)), (e) => isCofferError(e, 'E_NO_SPACE') && /quota/.test(e.message));
});

/**
 * A proxy in front of the gateway that answers the first `throttled` requests with what S3
 * sends an over-eager client (503 SlowDown) and forwards the rest untouched (the signature
 * covers the Host header, which is forwarded as is).
 */
async function throttlingProxy(throttled: number): Promise<{ endpoint: string; seen: () => number; close: () => Promise<void> }> {
  const target = new URL(s3.endpoint);
  let requests = 0;
  const server = http.createServer((request, response) => {
    requests++;
    if (requests <= throttled) {
      request.resume();
      response.writeHead(503, { 'content-type': 'application/xml' });
      response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
      return;
    }
    const upstream = http.request({ host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    seen: () => requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

test('s3: throttling (503 SlowDown) is retried with backoff; past the attempts it is a one-line E_BACKEND_IO', async () => {
  const proxy = await throttlingProxy(2);
  try {
    const backend = backendAt(`s3:${proxy.endpoint}/${bucket}/throttled`, { maxAttempts: 3 });
    await backend.put('config', Buffer.from('through'));
    assert.equal(proxy.seen(), 3, 'two refusals, then the put');
    assert.equal((await backend.get('config')).toString(), 'through');
  } finally {
    await proxy.close();
  }
  const stubborn = await throttlingProxy(Number.MAX_SAFE_INTEGER);
  try {
    const backend = backendAt(`s3:${stubborn.endpoint}/${bucket}/throttled`, { maxAttempts: 2 });
    await assert.rejects(backend.get('config'), (e) => isCofferError(e, 'E_BACKEND_IO') && /SlowDown/.test(e.message) && !e.message.includes('\n'));
    assert.equal(stubborn.seen(), 2);
  } finally {
    await stubborn.close();
  }
});
