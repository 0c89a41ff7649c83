import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { absoluteLocation } from './absolute-location.js';

test('a local directory becomes an absolute path; s3: and https:// locations stay as they are', () => {
  assert.equal(absoluteLocation('backups/main'), resolve('backups/main'));
  assert.equal(absoluteLocation('./main/'), resolve('main'));
  assert.equal(absoluteLocation('/srv/main'), '/srv/main');
  assert.equal(absoluteLocation('local:rel'), resolve('rel'));
  assert.equal(absoluteLocation('s3:https://rgw.example.com:7480/bucket/prefix'), 's3:https://rgw.example.com:7480/bucket/prefix');
  assert.equal(absoluteLocation('https://backup01:8443/vms'), 'https://backup01:8443/vms');
});
