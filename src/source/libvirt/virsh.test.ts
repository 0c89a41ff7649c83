import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isNoCheckpointError, isNoJobError, virshError } from './virsh.js';

test("virsh's error lines (libvirt 9.0, LC_ALL=C) become one-line errors with the right code", () => {
  const cases: [string, string, RegExp][] = [
    ["error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/tmp/nope': No such file or directory\n", 'E_LIBVIRT_ERROR', /^cannot reach libvirt at URI: Failed to connect socket to '\/tmp\/nope'/],
    ["error: failed to get domain 'nosuch'\n", 'E_DOMAIN_NOT_FOUND', /no such domain: failed to get domain 'nosuch'/],
    ["error: Domain checkpoint not found: no domain checkpoint with matching name 'x'\n", 'E_LIBVIRT_ERROR', /^virsh checkpoint-delete failed: Domain checkpoint not found/],
    ['', 'E_LIBVIRT_ERROR', /no message/],
  ];
  for (const [stderr, code, message] of cases) {
    const error = virshError('virsh checkpoint-delete', 'URI', stderr);
    assert.equal(error.code, code, stderr);
    assert.match(error.message, message);
    assert.ok(!error.message.includes('\n'), 'one line');
  }
  assert.ok(isNoCheckpointError(virshError('c', 'u', "error: Domain checkpoint not found: no domain checkpoint with matching name 'x'")));
  assert.ok(isNoJobError(virshError('c', 'u', 'error: Requested operation is not valid: no job is active on the domain')));
  assert.ok(isNoJobError(virshError('c', 'u', 'error: Domain backup job id not found: no domain backup job present')));
  assert.ok(!isNoJobError(virshError('c', 'u', "error: failed to get domain 'x'")));
});
