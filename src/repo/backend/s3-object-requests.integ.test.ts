/**
 * The lean object requests of S3Backend (s3-object-requests.ts) against a real Ceph RADOS
 * Gateway, for what the backend conformance suite does not see: a GET's bytes own their
 * memory (so they move to a worker without a copy), an answer cut short is retried and then
 * reported in one line, a damaged upload is refused by the gateway (the payload hash is
 * signed; a digest its writer remembered is checked the same way), and keys from the
 * environment sign without explicit credentials.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { after, before, test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { startCephS3, type CephS3 } from '../../testing/index.js';
import { rememberSha256 } from './known-sha256.js';
import { S3Backend, type S3BackendOptions } from './s3-backend.js';
import { parseS3Location } from './s3-location.js';

let s3: CephS3;
let bucket: string;
const made: S3Backend[] = [];

before(async () => {
  s3 = await startCephS3();
  bucket = await s3.createBucket('requests');
});
after(async () => {
  for (const backend of made) backend.destroy();
  await s3?.stop();
});

function backendAt(endpoint: string, prefix: string, options: S3BackendOptions = { credentials: s3.credentials }): S3Backend {
  const backend = new S3Backend(parseS3Location(`s3:${endpoint}/${bucket}/${prefix}`), options);
  made.push(backend);
  return backend;
}

/**
 * A proxy in front of the gateway that lets `tamper` change what passes: the first `times`
 * GET answers lose their last bytes (the connection closes early), or the first PUT bodies
 * get a byte flipped.
 */
async function tamperingProxy(tamper: 'cut-answer' | 'flip-upload', times: number) {
  const target = new URL(s3.endpoint);
  let tampered = 0;
  const server = http.createServer((request, response) => {
    const hit = tampered < times && ((tamper === 'cut-answer' && request.method === 'GET') || (tamper === 'flip-upload' && request.method === 'PUT'));
    if (hit) tampered++;
    const upstream = http.request({ host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      if (!hit || tamper !== 'cut-answer') return void answer.pipe(response);
      const pieces: Buffer[] = [];
      answer.on('data', (piece: Buffer) => pieces.push(piece));
      answer.on('end', () => {
        const whole = Buffer.concat(pieces);
        response.write(whole.subarray(0, whole.length - 100));
        response.socket?.destroy(); // closed before content-length bytes arrived
      });
    });
    upstream.on('error', () => response.destroy());
    if (hit && tamper === 'flip-upload') {
      const pieces: Buffer[] = [];
      request.on('data', (piece: Buffer) => pieces.push(piece));
      request.on('end', () => {
        const body = Buffer.concat(pieces);
        body[0] = (body[0] ?? 0) ^ 0xff;
        upstream.end(body);
      });
    } else request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    tampered: () => tampered,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

test('a GET returns the object in a buffer that owns its memory', async () => {
  const backend = backendAt(s3.endpoint, 'own');
  const data = randomBytes(300_000);
  await backend.put('chunks/ab/own', data);
  const got = await backend.get('chunks/ab/own');
  assert.deepEqual(got, data);
  assert.equal(got.byteOffset, 0);
  assert.equal(got.buffer.byteLength, data.length, 'not a view into a larger (pooled) buffer');
  assert.ok(got.buffer instanceof ArrayBuffer);
});

test('an answer cut short is retried; cut every time it is a one-line E_BACKEND_IO', async () => {
  const data = randomBytes(100_000);
  await backendAt(s3.endpoint, 'cut').put('chunks/cd/cut', data);
  const once = await tamperingProxy('cut-answer', 1);
  try {
    assert.deepEqual(await backendAt(once.endpoint, 'cut').get('chunks/cd/cut'), data);
    assert.equal(once.tampered(), 1);
  } finally {
    await once.close();
  }
  const always = await tamperingProxy('cut-answer', Number.MAX_SAFE_INTEGER);
  try {
    const backend = backendAt(always.endpoint, 'cut', { credentials: s3.credentials, maxAttempts: 3 });
    await assert.rejects(backend.get('chunks/cd/cut'), (e) => isCofferError(e, 'E_BACKEND_IO') && !e.message.includes('\n'));
    assert.equal(always.tampered(), 3);
  } finally {
    await always.close();
  }
});

test('an upload damaged on the way is refused by the gateway and nothing is stored', async () => {
  const proxy = await tamperingProxy('flip-upload', Number.MAX_SAFE_INTEGER);
  try {
    const backend = backendAt(proxy.endpoint, 'flip', { credentials: s3.credentials, maxAttempts: 1 });
    await assert.rejects(backend.put('chunks/ef/flip', randomBytes(50_000)), (e) => isCofferError(e, 'E_BACKEND_IO') && /XAmzContentSHA256Mismatch|BadDigest/.test(e.message) && !e.message.includes('\n'));
    assert.equal(await backendAt(s3.endpoint, 'flip').has('chunks/ef/flip'), false);
  } finally {
    await proxy.close();
  }
});

test("a put signs with the writer's remembered SHA-256, which the gateway checks against the body", async () => {
  const backend = backendAt(s3.endpoint, 'known', { credentials: s3.credentials, maxAttempts: 1 });
  const pack = randomBytes(200_000);
  rememberSha256(pack, createHash('sha256').update(pack).digest());
  await backend.put('packs/known', pack);
  assert.deepEqual(await backend.get('packs/known'), pack);
  // A digest that does not match the bytes is refused, never stored: reusing the writer's
  // digest keeps the gateway's integrity check.
  const other = randomBytes(200_000);
  rememberSha256(other, createHash('sha256').update(pack).digest());
  await assert.rejects(backend.put('packs/wrong', other), (e) => isCofferError(e, 'E_BACKEND_IO') && /XAmzContentSHA256Mismatch|BadDigest/.test(e.message));
  assert.equal(await backend.has('packs/wrong'), false);
});

test('keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY sign the requests', async () => {
  const saved = { ...process.env };
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey });
  delete process.env.AWS_PROFILE;
  try {
    const backend = backendAt(s3.endpoint, 'env', {});
    await backend.put('config', Buffer.from('from the environment'));
    assert.equal((await backend.get('config')).toString(), 'from the environment');
    assert.equal(await backend.has('config'), true);
    await backend.delete('config');
    assert.equal(await backend.has('config'), false);
  } finally {
    process.env = saved;
  }
});
