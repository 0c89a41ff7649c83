import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { isHttpLocation, parseHttpLocation } from './http-location.js';
import { normalizeFingerprint } from './https-transport.js';

test('https://HOST[:PORT]/REPO locations parse; anything else is E_USAGE', () => {
  assert.deepEqual(parseHttpLocation('https://backup01:8443/vms'), { origin: 'https://backup01:8443', repository: 'vms', display: 'https://backup01:8443/vms' });
  assert.deepEqual(parseHttpLocation('https://[::1]:8443/vms/'), { origin: 'https://[::1]:8443', repository: 'vms', display: 'https://[::1]:8443/vms' });
  assert.equal(parseHttpLocation('https://backup01/site-a.vms').origin, 'https://backup01');
  for (const bad of ['http://backup01/vms', 'https://backup01', 'https://backup01/a/b', 'https://u:p@backup01/vms', 'https://backup01/vms?x=1', 'https://backup01/VMS', 'https://backup01/a%2Fb', 'https://']) {
    assert.throws(() => parseHttpLocation(bad), (e) => isCofferError(e, 'E_USAGE') && !(e as Error).message.includes('u:p@'), bad);
  }
  assert.equal(isHttpLocation('https://x/y'), true);
  assert.equal(isHttpLocation('s3:https://x/y'), false);
  assert.equal(isHttpLocation('/srv/repo'), false);
});

test('fingerprints are accepted with or without colons and a SHA256: prefix', () => {
  const canonical = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').toUpperCase()).join(':');
  for (const form of [canonical, canonical.toLowerCase(), canonical.replace(/:/g, ''), `SHA256:${canonical}`, `sha-256:${canonical}`]) {
    assert.equal(normalizeFingerprint(form), canonical, form);
  }
  for (const bad of ['', 'AB:CD', `${canonical}:00`, canonical.replace('0', 'G')]) {
    assert.throws(() => normalizeFingerprint(bad), (e) => isCofferError(e, 'E_USAGE'), bad);
  }
});
