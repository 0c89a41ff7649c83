/**
 * Every write that locks its object carries a Content-MD5 of its body: AWS refuses an upload
 * under Object Lock retention without it (or an SDK checksum header), with 400
 * MissingUploadObjectWithObjectLockHeaders. Ceph RGW, the S3 store of the integration tests,
 * accepts such uploads either way, so the requests are checked here as they leave the client:
 * a local HTTP endpoint records each PUT (headers and body) and answers as S3 does.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { S3Backend } from './s3-backend.js';
import { parseS3Location } from './s3-location.js';

interface Recorded {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const MiB = 1024 * 1024;
const requests: Recorded[] = [];
let server: http.Server;
let backend: S3Backend;

before(async () => {
  server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = request.url ?? '';
      requests.push({ url, headers: request.headers, body: Buffer.concat(chunks) });
      if (request.method === 'POST' && url.includes('uploads')) {
        response.writeHead(200, { 'content-type': 'application/xml' });
        response.end('<?xml version="1.0"?><InitiateMultipartUploadResult><Bucket>vault</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>');
      } else if (request.method === 'POST') {
        response.writeHead(200, { 'content-type': 'application/xml' });
        response.end('<?xml version="1.0"?><CompleteMultipartUploadResult><Bucket>vault</Bucket><Key>k</Key><ETag>"e"</ETag></CompleteMultipartUploadResult>');
      } else {
        response.writeHead(200, { etag: '"e"' });
        response.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  backend = new S3Backend(parseS3Location(`s3:http://127.0.0.1:${port}/vault/site`), {
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    multipartThreshold: 6 * MiB,
    partSize: 5 * MiB,
    maxAttempts: 1,
  });
});

after(async () => {
  backend.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const md5 = (body: Buffer) => createHash('md5').update(body).digest('base64');
const retention = { mode: 'COMPLIANCE' as const, until: new Date(Date.now() + 86_400_000) };

test('a locked put, a locked create and every part of a locked multipart upload carry the Content-MD5 of their body', async () => {
  requests.length = 0;
  await backend.objectLock.put('snapshots/aa', Buffer.from('a locked manifest'), retention);
  assert.equal(await backend.objectLock.create('config', Buffer.from('a locked config'), retention), true);
  const big = Buffer.alloc(12 * MiB, 7);
  await backend.objectLock.put('packs/bb', big, retention);
  const locked = requests.filter((r) => r.headers['x-amz-object-lock-mode'] !== undefined);
  assert.equal(locked.length, 3, 'the two puts and the multipart upload\'s start name the lock');
  const withBody = requests.filter((r) => r.body.length > 0 && (r.headers['x-amz-object-lock-mode'] !== undefined || r.url.includes('partNumber=')));
  assert.equal(withBody.length, 2 + 3, 'two single puts and three parts');
  for (const r of withBody) assert.equal(r.headers['content-md5'], md5(r.body), `Content-MD5 of ${r.url}`);
});

test('an unlocked put sends no Content-MD5 (no MD5 pass over every chunk)', async () => {
  requests.length = 0;
  await backend.put('packs/cc', Buffer.from('plain'));
  assert.equal(requests.length, 1);
  assert.equal(requests[0]?.headers['content-md5'], undefined);
});
