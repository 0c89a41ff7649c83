import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentDisposition, parseRange, sniffContentType } from './download-headers.js';

test('Content-Disposition survives hostile guest names', () => {
  const cases: [string, string][] = [
    ['report.txt', 'attachment; filename="report.txt"; filename*=UTF-8\'\'report.txt'],
    ['a"b\r\nSet-Cookie: x=1', 'attachment; filename="a_b__Set-Cookie: x=1"; filename*=UTF-8\'\'a%22b%0D%0ASet-Cookie%3A%20x%3D1'],
    ['../../etc/passwd', 'attachment; filename="__.._etc_passwd"; filename*=UTF-8\'\'..%2F..%2Fetc%2Fpasswd'],
    ['résumé 日本.pdf', 'attachment; filename="r_sum_ __.pdf"; filename*=UTF-8\'\'r%C3%A9sum%C3%A9%20%E6%97%A5%E6%9C%AC.pdf'],
    ['', 'attachment; filename="download"; filename*=UTF-8\'\''],
    // Bytes that are not UTF-8 (a Latin-1 guest's caf\xe9, held as a lone surrogate) as %XX, as the zip names them; another lone surrogate as U+FFFD.
    ['caf\uDCE9.txt', 'attachment; filename="caf_E9.txt"; filename*=UTF-8\'\'caf%25E9.txt'],
    ['d\uDCE9j\uDCE0.tar', 'attachment; filename="d_E9j_E0.tar"; filename*=UTF-8\'\'d%25E9j%25E0.tar'],
    ['x\uD800', 'attachment; filename="x_"; filename*=UTF-8\'\'x%EF%BF%BD'],
  ];
  for (const [name, want] of cases) {
    const header = contentDisposition(name);
    assert.equal(header, want, JSON.stringify(name));
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(header, /[\u0000-\u001f\u007f]/);
  }
  assert.match(contentDisposition('a.png', true), /^inline; /);
});

test('content types: text, images, and everything else as bytes', () => {
  assert.equal(sniffContentType(Buffer.from('hello\n')), 'text/plain; charset=utf-8');
  assert.equal(sniffContentType(Buffer.from('<html><script>alert(1)</script>')), 'text/plain; charset=utf-8');
  assert.equal(sniffContentType(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0])), 'image/png');
  assert.equal(sniffContentType(Buffer.from([0xff, 0xd8, 0xff, 0xe0])), 'image/jpeg');
  assert.equal(sniffContentType(Buffer.from('RIFF\0\0\0\0WEBPVP8 ')), 'image/webp');
  assert.equal(sniffContentType(Buffer.from([1, 2, 0, 4])), 'application/octet-stream');
  assert.equal(sniffContentType(Buffer.from([0xc3, 0x28])), 'application/octet-stream');
  assert.equal(sniffContentType(Buffer.concat([Buffer.alloc(8191, 0x61), Buffer.from([0xc3])])), 'text/plain; charset=utf-8');
});

test('Range: one range served, others ignored, beyond the end refused', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=50-1000', 100), { start: 50, end: 99 });
  assert.equal(parseRange(undefined, 100), undefined);
  assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
  assert.equal(parseRange('items=0-1', 100), undefined);
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=5-2', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
});
