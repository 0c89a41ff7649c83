import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBlockIoError } from './block-io-error.js';

const event = (data: Record<string, unknown>) => ({ event: 'BLOCK_IO_ERROR', data: data as never, timestampMicros: 0 });

test('a BLOCK_IO_ERROR as QEMU 7.2 sends it is read whole; nospace defaults to false', () => {
  assert.deepEqual(parseBlockIoError(event({ device: '', 'node-name': 'coffer-cbw-a1b2c3-0', operation: 'write', action: 'stop', nospace: true, reason: 'No space left on device' })), {
    device: '', nodeName: 'coffer-cbw-a1b2c3-0', operation: 'write', action: 'stop', nospace: true, reason: 'No space left on device',
  });
  assert.deepEqual(parseBlockIoError(event({ device: 'drive0', operation: 'read', action: 'report', reason: 'Input/output error' })), {
    device: 'drive0', operation: 'read', action: 'report', nospace: false, reason: 'Input/output error',
  });
});

test('another event, or one missing or misspelling a member, is not a BLOCK_IO_ERROR', () => {
  assert.equal(parseBlockIoError({ event: 'STOP', data: {}, timestampMicros: 0 }), undefined);
  assert.equal(parseBlockIoError(event({ operation: 'write', action: 'stop', reason: 'x' })), undefined);
  assert.equal(parseBlockIoError(event({ device: '', operation: 'flush', action: 'stop', reason: 'x' })), undefined);
  assert.equal(parseBlockIoError(event({ device: '', operation: 'write', action: 'pause', reason: 'x' })), undefined);
  assert.equal(parseBlockIoError(event({ device: '', operation: 'write', action: 'stop' })), undefined);
});
