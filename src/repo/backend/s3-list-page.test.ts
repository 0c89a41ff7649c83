import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseListPage } from './s3-object-requests.js';
import { canonicalQuery } from './s3-signature.js';

// What Ceph RGW 16 answers (trimmed), with a key that needs escaping in XML.
const PAGE = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>repo/</Prefix><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>repo/chunks/ab/ab12</Key><LastModified>2026-11-26T05:00:00.000Z</LastModified><ETag>&quot;0cc1&quot;</ETag><Size>262189</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>repo/odd &amp; &lt;x&gt; &#233;&#x4e2d;</Key><Size>0</Size></Contents><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&amp;</NextContinuationToken><KeyCount>2</KeyCount></ListBucketResult>`;

test('a ListObjectsV2 page: keys unescaped, sizes, the next token', () => {
  assert.deepEqual(parseListPage(PAGE), {
    objects: [{ key: 'repo/chunks/ab/ab12', size: 262189 }, { key: 'repo/odd & <x> é中', size: 0 }],
    next: '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&',
  });
});

test('the last page has no next token; an empty listing has no objects', () => {
  const last = PAGE.replace('<IsTruncated>true</IsTruncated>', '<IsTruncated>false</IsTruncated>');
  assert.equal(parseListPage(last).next, undefined);
  assert.deepEqual(parseListPage('<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>'), { objects: [], next: undefined });
});

test('answers that are not a sound listing are errors, never a silently short list', () => {
  assert.throws(() => parseListPage('<html>proxy error</html>'), /not a ListBucketResult/);
  assert.throws(() => parseListPage('<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>'), /no key or size/);
  assert.throws(() => parseListPage('<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>'), /no continuation token/);
});

test('the canonical query string: sorted by name, names and values encoded, slashes too', () => {
  assert.equal(canonicalQuery({ prefix: 'repo/chunks/', 'list-type': '2', 'max-keys': '1000', 'continuation-token': 'a+b/c=' }), 'continuation-token=a%2Bb%2Fc%3D&list-type=2&max-keys=1000&prefix=repo%2Fchunks%2F');
});
