import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { EMPTY_PAYLOAD_HASH, encodeS3Path, S3Signer } from './s3-signature.js';

// The example keys of the AWS documentation ("Signature Calculations for the Authorization
// Header: Transferring Payload in a Single Chunk"), whose expected signatures it publishes.
const DOC_KEYS = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const DOC_TIME = new Date('2013-05-24T00:00:00Z');

test('the AWS documentation\'s GET Object example signs to its published signature', () => {
  const headers = new S3Signer('us-east-1').sign({ method: 'GET', host: 'examplebucket.s3.amazonaws.com', path: '/test.txt', payloadHash: EMPTY_PAYLOAD_HASH, headers: { range: 'bytes=0-9' } }, DOC_KEYS, DOC_TIME);
  assert.equal(headers['x-amz-date'], '20130524T000000Z');
  assert.equal(headers['x-amz-content-sha256'], EMPTY_PAYLOAD_HASH);
  assert.equal(
    headers.authorization,
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  );
});

test('the AWS documentation\'s PUT Object example (a $ in the key, a body) signs to its published signature', () => {
  const body = Buffer.from('Welcome to Amazon S3.');
  const payloadHash = createHash('sha256').update(body).digest('hex');
  assert.equal(payloadHash, '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072');
  const headers = new S3Signer('us-east-1').sign(
    { method: 'PUT', host: 'examplebucket.s3.amazonaws.com', path: encodeS3Path(['test$file.text']), payloadHash, headers: { date: 'Fri, 24 May 2013 00:00:00 GMT', 'x-amz-storage-class': 'REDUCED_REDUNDANCY' } },
    DOC_KEYS,
    DOC_TIME,
  );
  assert.match(headers.authorization ?? '', /SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd$/);
});

test('path-style with a port and a session token: the token is sent and signed (value from @smithy/signature-v4)', () => {
  const credentials = { accessKeyId: 'AK', secretAccessKey: 'SECRET/x', sessionToken: 'tok en' };
  const payloadHash = createHash('sha256').update('Welcome to Amazon S3.').digest('hex');
  const signer = new S3Signer('eu-west-3');
  const request = { method: 'PUT', host: '127.0.0.1:8080', path: encodeS3Path(['bucket', 'repo', 'chunks', 'ab', 'ab12']), payloadHash };
  const headers = signer.sign(request, credentials, new Date('2026-11-26T05:00:01Z'));
  assert.equal(headers['x-amz-security-token'], 'tok en');
  assert.equal(
    headers.authorization,
    'AWS4-HMAC-SHA256 Credential=AK/20261126/eu-west-3/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=a2e61fec5a5521edf6db81cbead8b3fd5a435a3614efae41a7814a8f6b9841cb',
  );
  // The day's signing key is cached: a second request the same day signs the same way, and
  // the next day's differs.
  assert.equal(signer.sign(request, credentials, new Date('2026-11-26T05:00:01Z')).authorization, headers.authorization);
  assert.notEqual(signer.sign(request, credentials, new Date('2026-11-27T05:00:01Z')).authorization, headers.authorization);
});

test('paths: each segment encoded once, unreserved characters and slashes kept', () => {
  assert.equal(encodeS3Path(['bucket', 'site-a', 'chunks', 'ab', 'ab_c.d~e']), '/bucket/site-a/chunks/ab/ab_c.d~e');
  assert.equal(encodeS3Path(['a b', "it's", 'x*(y)!', 'é']), "/a%20b/it%27s/x%2A%28y%29%21/%C3%A9");
});
