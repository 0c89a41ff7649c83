import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { parseNbdUri } from './address.js';

test('NBD URIs name a unix socket or a TCP address and an export', () => {
  const cases: [string, object][] = [
    ['nbd+unix:///sda?socket=/run/coffer/x.sock', { socket: '/run/coffer/x.sock', exportName: 'sda' }],
    ['nbd+unix://?socket=/tmp/s', { socket: '/tmp/s', exportName: '' }],
    ['nbd+unix:///disk%20one?socket=/tmp/s', { socket: '/tmp/s', exportName: 'disk one' }],
    ['nbd://127.0.0.1:10900/vda', { host: '127.0.0.1', port: 10900, exportName: 'vda' }],
    ['nbd://backup-host/vda', { host: 'backup-host', port: 10809, exportName: 'vda' }],
    ['nbd://[::1]:7000/', { host: '::1', port: 7000, exportName: '' }],
  ];
  for (const [uri, expected] of cases) assert.deepEqual(parseNbdUri(uri), expected, uri);
});

test('URIs Coffer cannot use are usage errors that say why', () => {
  const cases: [string, RegExp][] = [
    ['nbd+unix:///sda', /socket=PATH/],
    ['nbds://host/sda', /TLS/],
    ['http://host/x', /unknown scheme/],
    ['nbd:///sda', /no host/],
    ['not a uri', /not a URI/],
    ['nbd+unix:///%zz?socket=/s', /percent/],
  ];
  for (const [uri, message] of cases) {
    assert.throws(() => parseNbdUri(uri), (e: unknown) => isCofferError(e, 'E_USAGE') && message.test((e as Error).message), uri);
  }
});
