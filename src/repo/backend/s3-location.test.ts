import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { parseS3Location } from './s3-location.js';

test('s3 locations: each documented form gives its endpoint, bucket, prefix and addressing', () => {
  const cases: [string, { endpoint: string; bucket: string; prefix: string; forcePathStyle: boolean; region: string | undefined }][] = [
    ['s3:http://127.0.0.1:7480/backups', { endpoint: 'http://127.0.0.1:7480', bucket: 'backups', prefix: '', forcePathStyle: true, region: undefined }],
    ['s3:https://rgw.example.com/backups/site-a/vms/', { endpoint: 'https://rgw.example.com', bucket: 'backups', prefix: 'site-a/vms', forcePathStyle: true, region: undefined }],
    ['s3:https://minio.example.com:9000/backups/p?style=virtual&region=eu-1', { endpoint: 'https://minio.example.com:9000', bucket: 'backups', prefix: 'p', forcePathStyle: false, region: 'eu-1' }],
    ['s3:https://my.backups.s3.eu-west-3.amazonaws.com/coffer', { endpoint: 'https://s3.eu-west-3.amazonaws.com', bucket: 'my.backups', prefix: 'coffer', forcePathStyle: false, region: 'eu-west-3' }],
    ['s3:https://backups.s3.amazonaws.com', { endpoint: 'https://s3.amazonaws.com', bucket: 'backups', prefix: '', forcePathStyle: false, region: undefined }],
    ['s3:https://s3.us-west-2.amazonaws.com/backups/x', { endpoint: 'https://s3.us-west-2.amazonaws.com', bucket: 'backups', prefix: 'x', forcePathStyle: true, region: 'us-west-2' }],
  ];
  for (const [location, expected] of cases) {
    const { display: _display, ...parsed } = parseS3Location(location);
    assert.deepEqual(parsed, expected, location);
  }
  assert.equal(parseS3Location('s3:https://rgw.example.com/backups/a/?style=path').display, 's3:https://rgw.example.com/backups/a');
});

test('s3 locations: malformed ones are E_USAGE naming the problem, and credentials are refused', () => {
  const cases: [string, RegExp][] = [
    ['s3:https://rgw.example.com', /no bucket/],
    ['s3:https://rgw.example.com/', /no bucket/],
    ['s3:ftp://rgw.example.com/b', /scheme/],
    ['s3:backups', /not a URL/],
    ['s3:https://key:secret@rgw.example.com/backups', /credentials do not belong/],
    ['s3:https://rgw.example.com/Bad_Bucket', /bucket name/],
    ['s3:https://rgw.example.com/backups/a%2Fb', /prefix segment/],
    ['s3:https://rgw.example.com/backups/a b', /prefix segment/],
    ['s3:https://rgw.example.com/backups?style=odd', /style=odd/],
    ['s3:https://rgw.example.com/backups?token=x', /unknown parameter token/],
  ];
  for (const [location, message] of cases) {
    assert.throws(() => parseS3Location(location), (e) => isCofferError(e, 'E_USAGE') && message.test(e.message) && !e.message.includes('secret'), location);
  }
});
