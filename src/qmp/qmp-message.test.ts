import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { parseQmpMessage } from './qmp-message.js';

test('the four kinds of server message parse into typed values', () => {
  // The greeting and event lines are as QEMU 7.2 wrote them on this machine.
  assert.deepEqual(
    parseQmpMessage('{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}', 'p'),
    { kind: 'greeting', greeting: { version: { major: 7, minor: 2, micro: 22, package: 'Debian 1:7.2+dfsg-7+deb12u18+b3' }, capabilities: ['oob'] } },
  );
  assert.deepEqual(parseQmpMessage('{"return": {}, "id": 3}', 'p'), { kind: 'return', id: 3, value: {} });
  assert.deepEqual(parseQmpMessage('{"id": "x", "return": [1]}', 'p'), { kind: 'return', id: 'x', value: [1] });
  assert.deepEqual(parseQmpMessage('{"return": null}', 'p'), { kind: 'return', id: undefined, value: null });
  assert.deepEqual(
    parseQmpMessage('{"id": 1, "error": {"class": "CommandNotFound", "desc": "The command nosuch has not been found"}}', 'p'),
    { kind: 'error', id: 1, errorClass: 'CommandNotFound', desc: 'The command nosuch has not been found' },
  );
  assert.deepEqual(
    parseQmpMessage('{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "STOP"}', 'p'),
    { kind: 'event', event: { event: 'STOP', data: {}, timestampMicros: 1_700_000_000_000_005 } },
  );
  assert.deepEqual(
    parseQmpMessage('{"timestamp": {"seconds": -1, "microseconds": -1}, "event": "X", "data": {"id": "e"}, "extra": 1}', 'p'),
    { kind: 'event', event: { event: 'X', data: { id: 'e' }, timestampMicros: -1 } },
  );
});

test('anything else is E_PROTOCOL naming the peer and showing the line', () => {
  const bad: [string, RegExp][] = [
    ['{"return": ', /not JSON/],
    ['not json at all', /not JSON/],
    ['[1,2]', /not an object/],
    ['null', /not an object/],
    ['"QMP"', /not an object/],
    ['{}', /neither a greeting, a reply nor an event/],
    ['{"id": 1}', /neither/],
    ['{"return": {}, "error": {"class": "a", "desc": "b"}}', /neither/],
    ['{"error": "boom", "id": 1}', /error should be an object/],
    ['{"error": {"class": 5, "desc": "b"}}', /error\.class should be a string \(got 5\)/],
    ['{"error": {"class": "c"}}', /error\.desc should be a string \(got nothing\)/],
    ['{"event": 7, "timestamp": {"seconds": 1, "microseconds": 1}}', /event should be a string/],
    ['{"event": "STOP"}', /timestamp should be an object/],
    ['{"event": "STOP", "data": [], "timestamp": {"seconds": 1, "microseconds": 1}}', /data should be an object/],
    ['{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}', /QMP\.version\.qemu\.minor/],
    ['{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": "oob"}}', /capabilities should be an array/],
    [`${'['.repeat(200_000)}${']'.repeat(200_000)}`, /not an object|not JSON/],
  ];
  for (const [line, why] of bad) {
    assert.throws(() => parseQmpMessage(line, 'QMP at /s'), (err) =>
      isCofferError(err, 'E_PROTOCOL') && err.message.startsWith('QMP at /s sent') && why.test(err.message), line.slice(0, 60));
  }
});
